"""Read the predictions and the ground truth of one data sample in original image pixels.

The pipeline stores ground truth on the canvas (internals §3: the image resized so that its long
side is ``S``, padded bottom/right; ``canvas px = original px × scale_factor``) while the detector
returns predictions in original image pixels (internals §7). This module is the one place where
ground truth is brought back to the original frame, so every metric compares like with like:
boxes and keypoints are divided by the scale factor, masks are decoded from the annotation's RLE
at the original size (metainfo ``gt_mask_rles``), never resized back from the canvas.

A sample reaches a metric either as a ``DetDataSample`` (direct calls, tests) or as the dict that
MMEngine's ``Evaluator`` makes of it with ``to_dict()`` (metainfo keys at the top level, instance
data as dicts of tensors); :func:`as_dict` turns both into the dict form.
"""
from typing import Any, Dict, List, Optional, Tuple

import mmcv
import numpy as np
import pycocotools.mask as mask_utils
import torch
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import BaseDataElement

from mmrefvlm.trp import strip_tags


def as_dict(sample: Any) -> Dict[str, Any]:
    """Return ``sample`` as a flat dict (metainfo keys and data fields side by side)."""
    if isinstance(sample, BaseDataElement):
        return sample.to_dict()
    if isinstance(sample, dict):
        return sample
    raise TypeError(f'expected a DetDataSample or its dict form, got {type(sample).__name__}')


def to_numpy(value: Any) -> np.ndarray:
    """Convert a tensor, ``BitmapMasks``, list or array to a numpy array on the CPU."""
    if isinstance(value, BitmapMasks):
        return value.masks
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def sample_name(sample: Dict[str, Any]) -> str:
    """A short name of the sample for error messages (``img_id`` and ``sample_idx``)."""
    return f"img_id={sample.get('img_id')!r} sample_idx={sample.get('sample_idx')!r}"


def _field(container: Any, key: str) -> Any:
    if container is None:
        return None
    if isinstance(container, dict):
        return container.get(key)
    return getattr(container, key, None)


def _require(sample: Dict[str, Any], key: str) -> Any:
    if key not in sample:
        raise KeyError(f'{sample_name(sample)}: data sample has no {key!r}')
    return sample[key]


def _scale(sample: Dict[str, Any]) -> Tuple[float, float]:
    sx, sy = (float(s) for s in _require(sample, 'scale_factor'))
    return sx, sy


def original_gt_masks(sample: Dict[str, Any], num: int) -> np.ndarray:
    """The ground-truth masks of a sample decoded from the annotation at the original size.

    Args:
        sample: dict form of a data sample whose metainfo ``gt_mask_rles`` holds one COCO RLE
            per ``gt_instances`` row (``PackREFVLMInputs`` packs them).
        num: the number of ground-truth rows.

    Returns:
        ``[num, H, W]`` bool masks, ``(H, W) = ori_shape``, decoded by pycocotools.
    """
    rles = sample.get('gt_mask_rles')
    if rles is None:
        raise ValueError(f"{sample_name(sample)}: gt_instances has masks but the metainfo has no "
                         "'gt_mask_rles' (the annotation at the original size, which "
                         'PackREFVLMInputs packs); metrics never score against canvas masks')
    ori_h, ori_w = (int(v) for v in _require(sample, 'ori_shape')[:2])
    if len(rles) != num:
        raise ValueError(f'{sample_name(sample)}: gt_mask_rles has {len(rles)} entries but '
                         f'gt_instances has {num} rows')
    sizes = {tuple(int(v) for v in rle['size']) for rle in rles}
    if sizes - {(ori_h, ori_w)}:
        raise ValueError(f'{sample_name(sample)}: gt_mask_rles sizes {sorted(sizes)} differ from '
                         f'ori_shape {(ori_h, ori_w)}')
    if num == 0:
        return np.zeros((0, ori_h, ori_w), dtype=bool)
    return mask_utils.decode(list(rles)).transpose(2, 0, 1).astype(bool)


def gt_instances_original(sample: Dict[str, Any]) -> Dict[str, np.ndarray]:
    """Ground-truth instances of a sample in original image pixels, in ``<REF>`` order.

    Args:
        sample: dict form of a data sample with ``gt_instances`` (canvas px) and the metainfo
            ``scale_factor`` ``(sx, sy)``, ``img_shape`` and ``ori_shape``.

    Returns:
        ``bboxes`` ``[N, 4]`` xyxy float; ``labels`` ``[N]`` and ``group_ids`` ``[N]`` int64
        (zeros when absent); ``masks`` ``[N, H, W]`` bool, decoded from the annotation at the
        original size (:func:`original_gt_masks`), and ``keypoints`` ``[N, K, 3]`` (x, y
        original px, visibility) when the sample has them.
    """
    gt = _require(sample, 'gt_instances')
    sx, sy = _scale(sample)
    bboxes = to_numpy(_field(gt, 'bboxes')).astype(np.float64).reshape(-1, 4)
    bboxes = bboxes / np.array([sx, sy, sx, sy])
    num = len(bboxes)
    out = dict(bboxes=bboxes)
    for key in ('labels', 'group_ids'):
        value = _field(gt, key)
        out[key] = (to_numpy(value).astype(np.int64).reshape(-1)
                    if value is not None else np.zeros(num, dtype=np.int64))
    if _field(gt, 'masks') is not None:
        out['masks'] = original_gt_masks(sample, num)
    keypoints = _field(gt, 'keypoints')
    if keypoints is not None:
        keypoints = _keypoint_array(keypoints)
        keypoints[..., 0] /= sx
        keypoints[..., 1] /= sy
        out['keypoints'] = keypoints
    return out


def pred_instances(sample: Dict[str, Any]) -> Dict[str, np.ndarray]:
    """Predicted instances of a sample (already in original image pixels).

    Returns:
        ``bboxes`` ``[n, 4]`` xyxy (empty ``[0, 4]`` when absent), ``scores`` ``[n]`` (ones when
        absent), ``labels`` ``[n]`` (index into ``pred_phrases``, zeros when absent), and
        ``masks`` ``[n, H, W]`` bool / ``keypoints`` ``[n, K, 3]`` when predicted.
    """
    pred = sample.get('pred_instances')
    bboxes = _field(pred, 'bboxes')
    masks = _field(pred, 'masks')
    keypoints = _field(pred, 'keypoints')
    num = _num_rows(bboxes, masks, keypoints)
    out = dict(bboxes=(to_numpy(bboxes).astype(np.float64).reshape(-1, 4)
                       if bboxes is not None else np.zeros((0, 4))))
    scores = _field(pred, 'scores')
    out['scores'] = (to_numpy(scores).astype(np.float64).reshape(-1)
                     if scores is not None else np.ones(num))
    labels = _field(pred, 'labels')
    out['labels'] = (to_numpy(labels).astype(np.int64).reshape(-1)
                     if labels is not None else np.zeros(num, dtype=np.int64))
    if masks is not None:
        out['masks'] = to_numpy(masks).astype(bool)
    if keypoints is not None:
        out['keypoints'] = _keypoint_array(keypoints)
    return out


def _keypoint_array(keypoints: Any) -> np.ndarray:
    """``[n, K, 3]`` float64 copy of keypoints given as ``[n, K, 3]`` or ``[n, 3K]``."""
    array = to_numpy(keypoints).astype(np.float64)
    return array if array.ndim == 3 else array.reshape(len(array), -1, 3)


def _num_rows(*fields: Any) -> int:
    for value in fields:
        if value is not None:
            return len(value)
    return 0


def pred_phrase_per_instance(sample: Dict[str, Any], labels: np.ndarray) -> list:
    """The phrase of each predicted instance: ``pred_phrases[labels[i]]``.

    Raises:
        IndexError: a label points past the end of ``pred_phrases``.
    """
    phrases = list(sample.get('pred_phrases') or [])
    out = []
    for label in labels.tolist():
        if not 0 <= label < len(phrases):
            raise IndexError(f'{sample_name(sample)}: pred_instances.labels has {label} but '
                             f'pred_phrases has {len(phrases)} entries')
        out.append(phrases[label])
    return out


def gt_depth_original(sample: Dict[str, Any]) -> Optional[np.ndarray]:
    """Ground-truth depth ``[H, W]`` metres in original pixels (0 = invalid), or ``None``.

    The canvas map is cropped to ``img_shape`` and resized to ``ori_shape`` with nearest
    neighbour, so invalid (0) pixels never blend into valid ones.
    """
    depth = _field(sample.get('gt_depth_map'), 'data')
    if depth is None:
        return None
    depth = to_numpy(depth).astype(np.float32).reshape(to_numpy(depth).shape[-2:])
    img_h, img_w = (int(v) for v in _require(sample, 'img_shape')[:2])
    ori_h, ori_w = (int(v) for v in _require(sample, 'ori_shape')[:2])
    cropped = np.ascontiguousarray(depth[:img_h, :img_w])
    return mmcv.imresize(cropped, (ori_w, ori_h), interpolation='nearest')


def pred_depth(sample: Dict[str, Any]) -> Optional[np.ndarray]:
    """Predicted depth ``[H, W]`` metres in original pixels, or ``None`` when not predicted."""
    depth = _field(sample.get('pred_depth_map'), 'data')
    if depth is None:
        return None
    depth = to_numpy(depth).astype(np.float32)
    return depth.reshape(depth.shape[-2:])


def sample_references(sample: Dict[str, Any], metric: str) -> List[str]:
    """The plain-text references of a sample.

    Metainfo ``references`` (every human reference, e.g. the 5 COCO captions) when present,
    else the reference answer ``gt_answer`` with its TRP tags removed.
    """
    references = sample.get('references')
    if references:
        return [strip_tags(ref) for ref in references]
    if sample.get('gt_answer') is None:
        raise KeyError(f"{metric}: {sample_name(sample)} has neither 'references' nor "
                       "'gt_answer'")
    return [strip_tags(sample['gt_answer'])]


def sample_prediction_text(sample: Dict[str, Any]) -> str:
    """The generated answer as plain text (TRP tags and VD-CoT removed; '' when absent)."""
    return strip_tags(sample.get('pred_text') or '')
