"""Run pycocotools' COCOeval on annotations built in memory (no json file is written).

MMDet's ``CocoMetric`` is not used: without an annotation file it dumps the ground truth and
the predictions to json files, and it expects dataset class labels where our models emit free
phrases. Here the callers build COCO-format dicts directly and every image of the split is
registered, so images without predictions still count (their ground truth are misses).
"""
import contextlib
import io
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_utils
from mmengine.logging import print_log
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

DETECTION_STATS = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l',
                   'AR_1', 'AR_10', 'AR_100', 'AR_s', 'AR_m', 'AR_l')
KEYPOINT_STATS = ('AP', 'AP_50', 'AP_75', 'AP_m', 'AP_l', 'AR', 'AR_50', 'AR_75', 'AR_m', 'AR_l')


def encode_mask(mask: np.ndarray) -> dict:
    """COCO compressed RLE of a bool mask ``[H, W]`` (``counts`` as str)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle['counts'] = rle['counts'].decode('ascii')
    return rle


def xyxy_to_xywh(box: np.ndarray) -> List[float]:
    """``[x1, y1, x2, y2]`` → COCO ``[x, y, w, h]`` (floats)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def region_annotations(instances: Dict[str, np.ndarray], iou_type: str, metric: str,
                       name: str, maskless_size: Optional[Tuple[int, int]] = None
                       ) -> List[Dict[str, Any]]:
    """COCO region fields (``bbox`` xywh, ``area``, and ``segmentation`` RLE for ``segm``) of
    each row of ``instances`` (original px).

    ``maskless_size`` (predictions only): ``(H, W)`` of the empty mask given to rows without a
    mask under ``segm`` (the model decoded another unit there), so they count as misses;
    without it a missing mask is an error (ground truth must have masks)."""
    if iou_type == 'segm':
        masks = instances.get('masks')
        if masks is None and maskless_size is None:
            raise ValueError(f'{metric}: {name} has no masks to evaluate segm AP')
        if masks is None:
            masks = np.zeros((len(instances['bboxes']), *maskless_size), dtype=bool)
        out = []
        for mask in masks:
            rle = encode_mask(mask)
            out.append(dict(segmentation=rle, area=float(mask_utils.area(rle)),
                            bbox=mask_utils.toBbox(rle).tolist()))
        return out
    out = []
    for box in instances['bboxes']:
        bbox = xyxy_to_xywh(box)
        out.append(dict(bbox=bbox, area=bbox[2] * bbox[3]))
    return out


def _result_fields(ann: dict, iou_type: str) -> dict:
    # loadRes derives area (and bbox) from the region field of its iou_type; passing another
    # region field would send it down the wrong branch (it tests 'bbox' first).
    region = dict(bbox='bbox', segm='segmentation', keypoints='keypoints')[iou_type]
    return dict(image_id=ann['image_id'], category_id=ann['category_id'],
                score=float(ann['score']), **{region: ann[region]})


def _coco_from_dict(dataset: dict) -> COCO:
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def coco_evaluate(images: List[dict],
                  categories: List[dict],
                  gt_annotations: List[dict],
                  dt_annotations: List[dict],
                  iou_type: str,
                  kpt_oks_sigmas: Optional[Sequence[float]] = None) -> Dict[str, float]:
    """COCOeval summary of ``dt_annotations`` against ``gt_annotations`` over all ``images``.

    Args:
        images: ``{id, height, width}`` of every image of the split.
        categories: ``{id, name}``.
        gt_annotations: COCO ground truth (``image_id``, ``category_id``, ``bbox`` xywh,
            ``area``, ``iscrowd`` and ``segmentation`` / ``keypoints`` + ``num_keypoints`` as
            ``iou_type`` needs); ids are assigned here.
        dt_annotations: COCO results (``image_id``, ``category_id``, ``score`` and ``bbox`` /
            ``segmentation`` / ``keypoints``; other keys are ignored); may be empty.
        iou_type: ``'bbox'``, ``'segm'`` or ``'keypoints'``.
        kpt_oks_sigmas: per-keypoint OKS sigmas as COCOeval uses them (COCO's nose: 0.026).

    Returns:
        ``DETECTION_STATS`` (bbox, segm) or ``KEYPOINT_STATS`` (keypoints) → value in [0, 1];
        ``-1`` where COCOeval has nothing to average (e.g. no ground truth of that size).
    """
    gt_annotations = [dict(ann, id=i + 1) for i, ann in enumerate(gt_annotations)]
    coco_gt = _coco_from_dict(dict(images=images, categories=categories,
                                   annotations=gt_annotations))
    if dt_annotations:
        with contextlib.redirect_stdout(io.StringIO()):
            coco_dt = coco_gt.loadRes([_result_fields(ann, iou_type) for ann in dt_annotations])
    else:
        coco_dt = _coco_from_dict(dict(images=images, categories=categories, annotations=[]))
    evaluator = COCOeval(coco_gt, coco_dt, iouType=iou_type)
    if kpt_oks_sigmas is not None:
        evaluator.params.kpt_oks_sigmas = np.asarray(kpt_oks_sigmas, dtype=np.float64)
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    print_log(f'COCOeval ({iou_type}):\n{summary.getvalue()}', logger='current')
    names = KEYPOINT_STATS if iou_type == 'keypoints' else DETECTION_STATS
    return {name: float(value) for name, value in zip(names, evaluator.stats)}
