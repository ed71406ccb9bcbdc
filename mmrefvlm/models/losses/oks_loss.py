"""Object Keypoint Similarity (COCO) as a loss and as a match cost, for ``RefKeypointHead``.

Our own (MMDet ships no keypoint losses): the formula is pycocotools' ``COCOeval.computeOks`` for
a ground truth with at least one labelled keypoint,

    OKS = Σ_i [v_i > 0] exp(-d_i² / (2 s² k_i²)) / Σ_i [v_i > 0],   k_i = 2 σ_i,

with ``d_i`` the distance between predicted and target keypoint ``i``, ``s²`` the instance area
(here the target box area) and ``σ_i`` the per-keypoint sigmas of the dataset (COCO's
``kpt_oks_sigmas``, e.g. 0.026 for the nose). Distances and area must share one frame (we use
canvas pixels).
"""
from typing import Optional, Sequence, Union

import torch
from mmdet.models.task_modules.assigners.match_cost import BaseMatchCost
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmrefvlm.registry import MODELS, TASK_UTILS


def keypoint_oks(pred: Tensor, target: Tensor, labelled: Tensor, areas: Tensor, sigmas: Tensor,
                 pairwise: bool = False, eps: float = 1e-8) -> Tensor:
    """COCO OKS between predicted and target keypoints.

    Args:
        pred: ``[n, K, 2]`` predicted ``(x, y)``.
        target: ``[m, K, 2]`` target ``(x, y)`` in the same frame (``m == n`` unless pairwise).
        labelled: ``[m, K]`` bool, True where the target keypoint is labelled (COCO ``v > 0``).
        areas: ``[m]`` target areas (``s²``) in that frame squared.
        sigmas: ``[K]`` per-keypoint sigmas (COCO ``kpt_oks_sigmas``).
        pairwise: False → row ``j`` of ``pred`` against row ``j`` of ``target``; True → every
            prediction against every target.
        eps: keeps the area and the labelled count away from zero.

    Returns:
        Tensor: ``[n]`` (or ``[n, m]`` when pairwise) OKS in ``[0, 1]``; 0 for a target with no
        labelled keypoint.
    """
    if pairwise:
        pred, target = pred[:, None], target[None]
        labelled, areas = labelled[None], areas[None]
    variances = (2 * sigmas) ** 2
    dist2 = ((pred - target) ** 2).sum(-1)
    similarity = torch.exp(-dist2 / (2 * variances * (areas[..., None] + eps)))
    labelled = labelled.to(similarity.dtype)
    return (similarity * labelled).sum(-1) / labelled.sum(-1).clamp(min=eps)


@MODELS.register_module()
class OKSLoss(nn.Module):
    """``1 - OKS`` per instance, averaged over the instances that have a labelled keypoint.

    Args:
        sigmas: ``[K]`` per-keypoint sigmas (COCO ``kpt_oks_sigmas``).
        loss_weight: multiplier of the loss.
    """

    def __init__(self, sigmas: Sequence[float], loss_weight: float = 1.0) -> None:
        super().__init__()
        self.register_buffer('sigmas', torch.as_tensor(sigmas, dtype=torch.float32),
                             persistent=False)
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor, labelled: Tensor, areas: Tensor,
                avg_factor: Optional[float] = None) -> Tensor:
        """Args:
            pred: ``[n, K, 2]`` predicted ``(x, y)``; target: ``[n, K, 2]`` in the same frame;
            labelled: ``[n, K]`` bool (COCO ``v > 0``); areas: ``[n]`` target areas in that
            frame; avg_factor: divisor (default: the number of instances with a labelled
            keypoint, at least 1).

        Returns:
            Tensor: scalar, ``loss_weight * Σ_instances (1 - OKS) / avg_factor`` over the
            instances with a labelled keypoint.
        """
        if pred.shape[-1] != 2 or pred.shape != target.shape or \
                pred.shape[-2] != self.sigmas.numel():
            raise ValueError(f'OKSLoss: pred {tuple(pred.shape)} and target '
                             f'{tuple(target.shape)} must both be [n, K, 2] with '
                             f'K = {self.sigmas.numel()} (the number of sigmas)')
        has_label = labelled.any(-1)
        oks = keypoint_oks(pred.float(), target.float(), labelled, areas.float(),
                           self.sigmas.to(pred.device))
        if avg_factor is None:
            avg_factor = has_label.sum().clamp(min=1).item()
        loss = ((1 - oks) * has_label.float()).sum() / avg_factor
        return self.loss_weight * loss


@TASK_UTILS.register_module()
class KeypointOKSCost(BaseMatchCost):
    """Match cost ``-weight × OKS`` between predicted and target keypoints.

    Reads ``pred_instances.keypoints [n, K, 2]`` (x, y) and ``gt_instances.keypoints [m, K, 3]``
    (x, y, v, COCO) and ``gt_instances.bboxes [m, 4]`` xyxy (area = box area), all in one frame.

    Args:
        sigmas: ``[K]`` per-keypoint sigmas; ``RefKeypointHead`` fills them from its
            ``keypoint_sigmas`` when the config leaves them out.
        weight: cost weight.
    """

    def __init__(self, sigmas: Sequence[float], weight: Union[float, int] = 1.0) -> None:
        super().__init__(weight=weight)
        self.sigmas = torch.as_tensor(sigmas, dtype=torch.float32)

    def __call__(self, pred_instances: InstanceData, gt_instances: InstanceData,
                 img_meta: Optional[dict] = None, **kwargs) -> Tensor:
        """Returns: ``[n_pred, n_gt]`` cost."""
        gt = gt_instances.keypoints.float()
        boxes = gt_instances.bboxes.float()
        areas = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
        oks = keypoint_oks(pred_instances.keypoints.float(), gt[..., :2], gt[..., 2] > 0, areas,
                           self.sigmas.to(gt.device), pairwise=True)
        return -oks * self.weight
