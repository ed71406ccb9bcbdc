"""Referring expression comprehension: Acc@0.5 and mean IoU of the top-1 box."""
from typing import Any, Dict, List

import numpy as np

from mmrefvlm.registry import METRICS
from .overlaps import box_iou_matrix
from .sample_views import gt_instances_original, pred_instances, sample_name
from .task_metric import TaskMetric, TaskNames


@METRICS.register_module()
class RECMetric(TaskMetric):
    """REC accuracy (DESIGN §7), one sample per referring expression.

    Protocol: the top-1 box is the **first** predicted box (the first ``<REF>`` the model
    generated); it is compared with the first ground-truth box of the sample (the referred
    object), both in original image pixels. A hit is ``IoU >= iou_thr`` (``≥``, default 0.5). A
    sample with no predicted box is a miss with IoU 0, never dropped.

    Reports ``{task}/acc@{iou_thr}`` (fraction of hits in [0, 1]) and ``{task}/miou`` (mean IoU).

    Args:
        iou_thr: IoU threshold of a hit.
        tasks: task names, default ``('rec',)``.
    """
    default_tasks = ('rec', )

    def __init__(self, iou_thr: float = 0.5, tasks: TaskNames = None, **kwargs: Any) -> None:
        super().__init__(tasks=tasks, **kwargs)
        self.iou_thr = iou_thr

    def process_sample(self, sample: Dict[str, Any]) -> Dict[str, Any]:
        gt_boxes = gt_instances_original(sample)['bboxes']
        if len(gt_boxes) == 0:
            raise ValueError(f'RECMetric: {sample_name(sample)} has no ground-truth box')
        pred_boxes = pred_instances(sample)['bboxes']
        iou = float(box_iou_matrix(pred_boxes[:1], gt_boxes[:1]).max(initial=0.0))
        return dict(iou=iou)

    def compute_task(self, task: str, results: List[Dict[str, Any]]) -> Dict[str, float]:
        ious = np.array([r['iou'] for r in results])
        return {f'acc@{self.iou_thr}': float((ious >= self.iou_thr).mean()),
                'miou': float(ious.mean())}
