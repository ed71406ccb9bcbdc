"""Depth estimation: AbsRel, RMSE and δ < 1.25."""
from typing import Any, Dict, List, Optional

import numpy as np

from mmrefvlm.registry import METRICS
from .sample_views import gt_depth_original, pred_depth, sample_name
from .task_metric import TaskMetric, TaskNames


def depth_errors(pred: np.ndarray, gt: np.ndarray, min_depth: float,
                 max_depth: Optional[float]) -> Optional[Dict[str, float]]:
    """AbsRel, RMSE and δ<1.25 of one image over its valid ground-truth pixels.

    Args:
        pred: ``[H, W]`` predicted depth (metres), clipped to ``[min_depth, max_depth]``.
        gt: ``[H, W]`` ground truth (metres); valid where ``gt > 0`` (and ``<= max_depth``).

    Returns:
        ``{'abs_rel', 'rmse', 'delta1'}`` or ``None`` when no pixel is valid.
    """
    valid = gt > 0
    if max_depth is not None:
        valid &= gt <= max_depth
    if not valid.any():
        return None
    g = gt[valid].astype(np.float64)
    p = np.clip(pred[valid].astype(np.float64), min_depth, max_depth)
    ratio = np.maximum(p / g, g / p)
    return dict(abs_rel=float(np.mean(np.abs(p - g) / g)),
                rmse=float(np.sqrt(np.mean((p - g) ** 2))),
                delta1=float(np.mean(ratio < 1.25)))


@METRICS.register_module()
class DepthMetric(TaskMetric):
    """Monocular depth errors (DESIGN §7), per image then averaged over images.

    Protocol: compared at the **original** image resolution — ``pred_depth_map`` is in original
    pixels (internals §7) and ``gt_depth_map`` (canvas) is cropped to ``img_shape`` and resized
    to ``ori_shape`` with nearest neighbour (so invalid 0 pixels never blend into valid ones).
    Valid pixels: ``gt > 0`` (and ``gt <= max_depth`` when set). Predictions are clipped to
    ``[min_depth, max_depth]``. A sample without a predicted depth map is scored as an
    all-``min_depth`` prediction (a miss, not dropped). Images without any valid pixel cannot be
    scored and are skipped.

    Reports ``{task}/abs_rel`` (mean |p - g| / g), ``{task}/rmse`` (metres) and
    ``{task}/delta1`` (fraction of pixels with max(p/g, g/p) < 1.25), each averaged over
    images.

    Args:
        min_depth: lower clip of predictions (metres, > 0 so ratios are finite).
        max_depth: upper clip of predictions and validity cap of ground truth (metres).
        tasks: task names, default ``('depth',)``.
    """
    default_tasks = ('depth', )

    def __init__(self,
                 min_depth: float = 1e-3,
                 max_depth: Optional[float] = None,
                 tasks: TaskNames = None,
                 **kwargs: Any) -> None:
        super().__init__(tasks=tasks, **kwargs)
        if min_depth <= 0:
            raise ValueError(f'DepthMetric: min_depth must be > 0, got {min_depth}')
        self.min_depth = min_depth
        self.max_depth = max_depth

    def process_sample(self, sample: Dict[str, Any]) -> Dict[str, Any]:
        gt = gt_depth_original(sample)
        if gt is None:
            raise ValueError(f'DepthMetric: {sample_name(sample)} has no gt_depth_map')
        pred = pred_depth(sample)
        if pred is None:
            pred = np.full_like(gt, self.min_depth)
        if pred.shape != gt.shape:
            raise ValueError(f'DepthMetric: {sample_name(sample)} pred_depth_map is '
                             f'{pred.shape}, expected the original image size {gt.shape}')
        return dict(errors=depth_errors(pred, gt, self.min_depth, self.max_depth))

    def compute_task(self, task: str, results: List[Dict[str, Any]]) -> Dict[str, float]:
        errors = [r['errors'] for r in results if r['errors'] is not None]
        if not errors:
            return {}
        return {key: float(np.mean([e[key] for e in errors])) for key in errors[0]}
