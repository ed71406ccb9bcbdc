"""``GroupHungarianAssigner``: DETR's Hungarian matching restricted to TRP groups (paper §4.3,
App. C.1). The costs are MMDet match costs; the solver is :mod:`.group_matching`."""
from typing import List, Sequence, Tuple, Union

import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

from mmrefvlm.registry import TASK_UTILS
from .group_matching import solve_grouped_assignment


@TASK_UTILS.register_module()
class GroupHungarianAssigner:
    """One-to-one matching between predictions and targets that share a group id.

    Each ``<REF>`` of a Phrase–Unit–REF triplet is one prediction; the targets of the triplet form
    its group. The cost of every (prediction, target) pair of a sample is computed once with the
    configured MMDet match costs (summed), pairs across groups are excluded (paper Eq. 6), and each
    group is solved optimally — all groups of all samples in one vectorised pass when they are
    small (see :func:`solve_grouped_assignment`).

    Args:
        match_costs: MMDet match cost configs, e.g.
            ``[dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
            dict(type='IoUCost', iou_mode='giou', weight=2.0)]`` for boxes or
            ``[dict(type='FocalLossCost', weight=2.0, binary_input=True),
            dict(type='DiceCost', weight=5.0, pred_act=True)]`` for masks.
        max_brute_force_size: groups up to this size are solved by the exact vectorised
            subset search (``size·2^(size-1)`` candidate sums each), larger groups by scipy.
    """

    def __init__(self, match_costs: Sequence[Union[dict, ConfigDict]],
                 max_brute_force_size: int = 6) -> None:
        if len(match_costs) == 0:
            raise ValueError('GroupHungarianAssigner: match_costs is empty; give at least one '
                             'MMDet match cost config')
        if not 1 <= max_brute_force_size <= 8:
            raise ValueError(
                f'GroupHungarianAssigner: max_brute_force_size={max_brute_force_size}; it must '
                'be in [1, 8] (the subset search keeps 2^size partial sums per group)')
        self.match_costs = [TASK_UTILS.build(cfg) for cfg in match_costs]
        self.max_brute_force_size = max_brute_force_size

    @torch.no_grad()
    def cost_matrix(self, pred_instances: InstanceData, gt_instances: InstanceData,
                    img_meta: dict) -> Tensor:
        """Summed match cost of one sample.

        Args:
            pred_instances: the fields the costs read (``bboxes`` xyxy px, ``masks`` logits…),
                ``n_pred`` rows.
            gt_instances: the same fields for the ``n_gt`` targets.
            img_meta: image meta the costs read (``BBoxL1Cost`` normalises by ``img_shape``).

        Returns:
            Tensor: ``[n_pred, n_gt]``.
        """
        n_pred, n_gt = len(pred_instances), len(gt_instances)
        if n_pred == 0 or n_gt == 0:
            return torch.zeros(n_pred, n_gt)
        return sum(cost(pred_instances, gt_instances, img_meta) for cost in self.match_costs)

    def assign(self, pred_instances: InstanceData, gt_instances: InstanceData,
               pred_group_ids: Tensor, gt_group_ids: Tensor,
               img_meta: dict) -> Tuple[Tensor, Tensor]:
        """Match one sample.

        Args:
            pred_instances: ``n_pred`` predictions.
            gt_instances: ``n_gt`` targets.
            pred_group_ids: ``[n_pred]`` long, group (triplet) id of each prediction.
            gt_group_ids: ``[n_gt]`` long, group id of each target.
            img_meta: image meta for the costs.

        Returns:
            tuple: ``(pred_inds, gt_inds)`` long ``[m]``, sorted by ``pred_inds``; every group
            contributes ``min(n_pred_g, n_gt_g)`` pairs of minimum total cost.
        """
        return self.assign_batch([pred_instances], [gt_instances], [pred_group_ids],
                                 [gt_group_ids], [img_meta])[0]

    def assign_batch(self, batch_pred_instances: Sequence[InstanceData],
                     batch_gt_instances: Sequence[InstanceData],
                     batch_pred_group_ids: Sequence[Tensor],
                     batch_gt_group_ids: Sequence[Tensor],
                     batch_img_metas: Sequence[dict]) -> List[Tuple[Tensor, Tensor]]:
        """Match several samples (or decoder layers × samples) with one solver pass.

        All arguments are parallel lists with one entry per sample, as in :meth:`assign`.

        Returns:
            list: per sample ``(pred_inds, gt_inds)``.
        """
        num = len(batch_pred_instances)
        if not (len(batch_gt_instances) == len(batch_pred_group_ids) == len(batch_gt_group_ids)
                == len(batch_img_metas) == num):
            raise ValueError('GroupHungarianAssigner.assign_batch: the five argument lists must '
                             'have one entry per sample each')
        costs = []
        for b in range(num):
            pred, gt = batch_pred_instances[b], batch_gt_instances[b]
            if batch_pred_group_ids[b].numel() != len(pred) or \
                    batch_gt_group_ids[b].numel() != len(gt):
                raise ValueError(
                    f'GroupHungarianAssigner: sample {b}: {len(pred)} predictions with '
                    f'{batch_pred_group_ids[b].numel()} group ids, {len(gt)} targets with '
                    f'{batch_gt_group_ids[b].numel()} group ids')
            costs.append(self.cost_matrix(pred, gt, batch_img_metas[b]).to(
                batch_pred_group_ids[b].device))
        return solve_grouped_assignment(costs, batch_pred_group_ids, batch_gt_group_ids,
                                        self.max_brute_force_size)
