"""Referring expression segmentation: cIoU and gIoU."""
from typing import Any, Dict, List, Tuple

import numpy as np

from mmrefvlm.registry import METRICS
from .overlaps import mask_intersection_union, union_mask
from .sample_views import gt_instances_original, pred_instances, sample_name
from .task_metric import TaskMetric, TaskNames


def union_masks_pair(sample: Dict[str, Any], metric: str) -> Tuple[np.ndarray, np.ndarray]:
    """The union of the predicted masks and the union of the ground-truth masks of a sample.

    Returns:
        ``(pred [H, W] bool, gt [H, W] bool)`` in original image pixels; the prediction is all
        False when the model predicted no mask.
    """
    gt = gt_instances_original(sample)
    if 'masks' not in gt:
        raise ValueError(f'{metric}: {sample_name(sample)} has no ground-truth masks')
    shape = tuple(gt['masks'].shape[1:])
    gt_union = union_mask(gt['masks'], shape)
    pred_masks = pred_instances(sample).get('masks')
    if pred_masks is None or len(pred_masks) == 0:
        return np.zeros(shape, dtype=bool), gt_union
    if tuple(pred_masks.shape[1:]) != shape:
        raise ValueError(f'{metric}: {sample_name(sample)} predicted masks are '
                         f'{tuple(pred_masks.shape[1:])}, expected the original image size '
                         f'{shape}')
    pred_union = union_mask(pred_masks, shape)
    return pred_union, gt_union


@METRICS.register_module()
class RESMetric(TaskMetric):
    """RES cIoU and gIoU (DESIGN §7).

    Protocol: per sample, the union of all predicted masks is compared with the union of all
    ground-truth masks, in original image pixels. ``ciou = ΣI / ΣU`` over the split;
    ``giou = mean(I / U)`` over samples (also called mIoU). A sample without a predicted mask
    has IoU 0 (its ground-truth pixels still add to ΣU). A sample whose union is empty (no
    ground truth and no prediction) has IoU 1.

    Reports ``{task}/ciou`` and ``{task}/giou`` in [0, 1].

    Args:
        tasks: task names, default ``('res',)``.
    """
    default_tasks = ('res', )

    def __init__(self, tasks: TaskNames = None, **kwargs: Any) -> None:
        super().__init__(tasks=tasks, **kwargs)

    def process_sample(self, sample: Dict[str, Any]) -> Dict[str, Any]:
        pred, gt = union_masks_pair(sample, 'RESMetric')
        inter, union = mask_intersection_union(pred, gt)
        return dict(inter=inter, union=union)

    def compute_task(self, task: str, results: List[Dict[str, Any]]) -> Dict[str, float]:
        return intersection_union_summary(results)


def intersection_union_summary(results: List[Dict[str, Any]]) -> Dict[str, float]:
    """``ciou = ΣI / ΣU`` and ``giou`` = mean per-sample IoU (empty union counts as 1)."""
    inter = np.array([r['inter'] for r in results], dtype=np.float64)
    union = np.array([r['union'] for r in results], dtype=np.float64)
    per_sample = np.divide(inter, union, out=np.ones_like(inter), where=union > 0)
    total_union = union.sum()
    return dict(ciou=float(inter.sum() / total_union) if total_union > 0 else 1.0,
                giou=float(per_sample.mean()))
