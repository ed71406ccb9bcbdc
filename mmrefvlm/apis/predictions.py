"""A REF-VLM prediction (``DetDataSample``) as JSON-serialisable data.

``prediction_to_dict`` gives, for one image::

    {"answer": "The red circle is here.",           # readable: tags and <Task> block removed
     "text": "<Task>...</Task><Phrase>...",          # as generated, special tokens kept
     "task": "rec",
     "triplets": [{"phrase": "the red circle", "units": ["box"], "num_refs": 1}],
     "refs": [{"phrase": "the red circle", "units": ["box"], "triplet": 0, "score": 0.93,
               "bbox": [x1, y1, x2, y2],             # always: for a mask/keypoint unit, their box
               "mask": {"size": [H, W], "counts": "..."},    # mask units: COCO compressed RLE
               "keypoints": [[x, y, score], ...]}],         # keypoint units
     "depth": [[metres, ...], ...]}                  # depth answers: [H, W], 0 = no depth

Everything is in original image pixels. Fields are read from ``pred_instances`` by name, so a
new unit head that writes ``bboxes``/``masks``/``keypoints``/``depth`` needs no change here.
"""
from typing import Any, Dict, List, Optional

import numpy as np
import pycocotools.mask as mask_utils
import torch
from mmdet.structures import DetDataSample

from mmrefvlm.trp import strip_tags
from mmrefvlm.visualization.refvlm_visualizer import row_triplets, sample_triplets

# pred_instances field → (the unit whose rows carry it, its key in a ref)
FIELD_UNITS = {'masks': ('mask', 'mask'), 'keypoints': ('keypoint', 'keypoints')}


def encode_rle(mask: np.ndarray) -> Dict[str, Any]:
    """``bool [H, W]`` → COCO compressed RLE ``{'size': [H, W], 'counts': str}``."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(size=[int(s) for s in rle['size']], counts=rle['counts'].decode('ascii'))


def _array(value) -> np.ndarray:
    return value.detach().cpu().float().numpy() if isinstance(value, torch.Tensor) \
        else np.asarray(value)


def _round(values: np.ndarray, digits: int = 2) -> list:
    return np.round(values.astype(np.float64), digits).tolist()


def prediction_to_dict(sample: DetDataSample) -> Dict[str, Any]:
    """One image's prediction as plain data (see the module docstring)."""
    text = sample.get('pred_text', '')
    triplets = sample_triplets(sample)
    result: Dict[str, Any] = dict(
        answer=strip_tags(text), text=text, task=sample.metainfo.get('task'),
        triplets=[dict(phrase=p, units=list(u), num_refs=n) for p, u, n in triplets],
        refs=_refs(sample, triplets))
    depth = _depth(sample)
    if depth is not None:
        result['depth'] = _round(depth, 3)
    return result


def _refs(sample: DetDataSample, triplets: list) -> List[Dict[str, Any]]:
    if 'pred_instances' not in sample:
        return []
    pred = sample.pred_instances
    refs = []
    for row, triplet in enumerate(row_triplets(sample)):
        phrase, units, _ = triplets[triplet] if triplet < len(triplets) else ('', (), 0)
        ref: Dict[str, Any] = dict(phrase=phrase, units=list(units), triplet=triplet)
        if 'bboxes' in pred:
            ref['bbox'] = _round(_array(pred.bboxes[row]))
        if 'scores' in pred:
            ref['score'] = round(float(pred.scores[row]), 4)
        for name, (unit, key) in FIELD_UNITS.items():
            if name in pred and unit in units:
                value = _array(pred[name][row])
                ref[key] = encode_rle(value > 0.5) if name == 'masks' else _round(value)
        refs.append(ref)
    return refs


def _depth(sample: DetDataSample) -> Optional[np.ndarray]:
    """The image's depth map ``[H, W]`` metres: the union of the rows' ``depth`` maps, or the
    detector's ``pred_depth_map``; ``None`` when the answer decodes no depth."""
    pred = sample.get('pred_instances')
    if pred is not None and 'depth' in pred and len(pred):
        return _array(pred.depth).max(0)
    if 'pred_depth_map' in sample:
        return _array(sample.pred_depth_map.data)[0]
    return None
