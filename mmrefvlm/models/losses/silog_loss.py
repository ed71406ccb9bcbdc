"""Scale-invariant log depth loss (Eigen et al., NeurIPS 2014, Eq. 4) for ``RefDepthHead``.

Our own (MMDet has no depth losses). With ``g_i = log ŷ_i - log y_i`` over the ``n`` valid pixels
of one map,

    SILog = (1/n) Σ g_i² - λ (1/n²) (Σ g_i)²   ( = Var(g) + (1 - λ) Mean(g)² ).

``λ = 1`` is fully invariant to a global scale of the prediction, ``λ = 0`` is the plain squared
log error; we default to ``λ = 0.85`` (the value AdaBins/BTS train with: mostly scale invariant,
still anchored to metric depth). Eigen et al. trained with ``λ = 0.5``.
"""
from typing import Optional

import torch
from torch import Tensor, nn

from mmrefvlm.registry import MODELS


@MODELS.register_module()
class SILogLoss(nn.Module):
    """Scale-invariant log loss, one value per map, averaged over the maps with a valid pixel.

    Args:
        lambda_: the ``λ`` of the formula, in ``[0, 1]``.
        loss_weight: multiplier of the loss.
    """

    def __init__(self, lambda_: float = 0.85, loss_weight: float = 1.0) -> None:
        super().__init__()
        if not 0.0 <= lambda_ <= 1.0:
            raise ValueError(f'SILogLoss: lambda_={lambda_} must be in [0, 1]')
        self.lambda_ = lambda_
        self.loss_weight = loss_weight

    def forward(self, pred_log_depth: Tensor, target: Tensor,
                valid: Optional[Tensor] = None) -> Tensor:
        """Args:
            pred_log_depth: ``[n, H, W]`` predicted **natural log** of depth.
            target: ``[n, H, W]`` target depth in metres; pixels ``<= 0`` (or not finite) are
                invalid.
            valid: optional ``[n, H, W]`` bool, further restricts the valid pixels (e.g. to the
                image area of the canvas).

        Returns:
            Tensor: scalar fp32, ``loss_weight × mean over maps with a valid pixel`` of SILog;
            ``0 × Σ pred`` (still differentiable) when no pixel is valid.
        """
        if pred_log_depth.shape != target.shape:
            raise ValueError(f'SILogLoss: prediction {tuple(pred_log_depth.shape)} and target '
                             f'{tuple(target.shape)} differ in shape')
        pred_log_depth, target = pred_log_depth.float(), target.float()
        mask = (target > 0) & torch.isfinite(target)
        if valid is not None:
            mask = mask & valid.bool()
        mask = mask.flatten(1)
        weight = mask.float()
        diff = (pred_log_depth.flatten(1) - torch.log(torch.where(mask, target.flatten(1),
                                                                  torch.ones_like(weight))))
        diff = diff * weight
        count = weight.sum(1)
        has_pixels = count > 0
        if not bool(has_pixels.any()):
            return pred_log_depth.sum() * 0.
        count = count.clamp(min=1)
        per_map = (diff ** 2).sum(1) / count - self.lambda_ * (diff.sum(1) / count) ** 2
        return self.loss_weight * per_map[has_pixels].mean()
