"""Interactive grounding: mIoU and cIoU per visual-prompt type."""
from collections import defaultdict
from typing import Any, Dict, List, Tuple

from mmrefvlm.registry import METRICS
from .overlaps import box_intersection_union, mask_intersection_union
from .res_metric import intersection_union_summary, union_masks_pair
from .sample_views import gt_instances_original, pred_instances, sample_name
from .task_metric import TaskMetric, TaskNames


@METRICS.register_module()
class InteractiveGroundingMetric(TaskMetric):
    """mIoU and cIoU of interactive grounding, overall and per prompt type (DESIGN §7).

    Protocol, in original image pixels:

    - ``ig_mask``: union of the predicted masks vs union of the ground-truth masks (as RES).
    - ``ig_box``: the first predicted box vs the first ground-truth box (as REC); the box
      intersection and union areas feed cIoU.

    A sample without a prediction has IoU 0 and its ground truth still adds to ΣU.
    ``miou`` = mean per-sample IoU, ``ciou`` = ΣI / ΣU. The prompt type of a sample is read from
    its metainfo ``prompt_types`` (one entry per ``<region>``); a sample whose prompts mix
    types is counted under the sorted types joined by ``+`` (e.g. ``box+point``).

    Reports ``{task}/miou``, ``{task}/ciou`` and ``{task}/{type}/miou``, ``{task}/{type}/ciou``.

    Args:
        tasks: task names, default ``('ig_box', 'ig_mask')``.
    """
    default_tasks = ('ig_box', 'ig_mask')

    def __init__(self, tasks: TaskNames = None, **kwargs: Any) -> None:
        super().__init__(tasks=tasks, **kwargs)
        for task in self.tasks:
            if task not in self.default_tasks:
                raise ValueError(f'InteractiveGroundingMetric: task {task!r} is not one of '
                                 f'{self.default_tasks}')

    def process_sample(self, sample: Dict[str, Any]) -> Dict[str, Any]:
        prompt_types = sample.get('prompt_types')
        if not prompt_types:
            raise ValueError(f'InteractiveGroundingMetric: {sample_name(sample)} has no '
                             "metainfo 'prompt_types'")
        if sample['task'] == 'ig_mask':
            inter, union = mask_intersection_union(*union_masks_pair(
                sample, 'InteractiveGroundingMetric'))
        else:
            inter, union = self._box_intersection_union(sample)
        return dict(inter=inter, union=union, prompt='+'.join(sorted(set(prompt_types))))

    @staticmethod
    def _box_intersection_union(sample: Dict[str, Any]) -> Tuple[float, float]:
        gt_boxes = gt_instances_original(sample)['bboxes']
        if len(gt_boxes) == 0:
            raise ValueError(f'InteractiveGroundingMetric: {sample_name(sample)} has no '
                             'ground-truth box')
        gt_box = gt_boxes[0]
        pred_boxes = pred_instances(sample)['bboxes']
        if len(pred_boxes) == 0:
            _, gt_area = box_intersection_union(gt_box, gt_box)
            return 0.0, gt_area
        return box_intersection_union(pred_boxes[0], gt_box)

    def compute_task(self, task: str, results: List[Dict[str, Any]]) -> Dict[str, float]:
        by_prompt: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
        for result in results:
            by_prompt[result['prompt']].append(result)
        overall = intersection_union_summary(results)
        metrics = dict(miou=overall['giou'], ciou=overall['ciou'])
        for prompt in sorted(by_prompt):
            summary = intersection_union_summary(by_prompt[prompt])
            metrics[f'{prompt}/miou'] = summary['giou']
            metrics[f'{prompt}/ciou'] = summary['ciou']
        return metrics
