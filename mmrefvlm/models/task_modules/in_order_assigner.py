"""``InOrderAssigner``: the matching that group matching replaces (paper Table 1's baseline)."""
from typing import List, Sequence, Tuple

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from mmrefvlm.registry import TASK_UTILS


@TASK_UTILS.register_module()
class InOrderAssigner:
    """The ``k``-th ``<REF>`` of a group answers the group's ``k``-th target (the answer's
    order), whatever the predictions: the "sequential" matching of paper Table 1. Swap it in
    for :class:`GroupHungarianAssigner` by config, e.g.
    ``model.heads.box.assigner=dict(_delete_=True, type='InOrderAssigner')``.
    """

    def assign_batch(self, batch_pred_instances: Sequence[InstanceData],
                     batch_gt_instances: Sequence[InstanceData],
                     batch_pred_group_ids: Sequence[Tensor],
                     batch_gt_group_ids: Sequence[Tensor],
                     batch_img_metas: Sequence[dict]) -> List[Tuple[Tensor, Tensor]]:
        """Match several samples, with the signature of
        :meth:`GroupHungarianAssigner.assign_batch`.

        Returns:
            list: per sample ``(pred_inds, gt_inds)`` long ``[m]``, sorted by ``pred_inds``;
            every group contributes ``min(n_pred_g, n_gt_g)`` pairs, in order.
        """
        results = []
        for pred_groups, gt_groups in zip(batch_pred_group_ids, batch_gt_group_ids):
            pred_inds, gt_inds = [], []
            for group in pred_groups.unique().tolist():
                preds = (pred_groups == group).nonzero()[:, 0]
                gts = (gt_groups == group).nonzero()[:, 0].to(preds.device)
                count = min(len(preds), len(gts))
                pred_inds.append(preds[:count])
                gt_inds.append(gts[:count])
            pred_inds = torch.cat(pred_inds) if pred_inds else pred_groups.new_zeros(0)
            gt_inds = torch.cat(gt_inds) if gt_inds else pred_groups.new_zeros(0)
            order = pred_inds.argsort()
            results.append((pred_inds[order], gt_inds[order]))
        return results
