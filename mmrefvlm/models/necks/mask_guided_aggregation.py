"""Mask-Guided Aggregation (paper §4.2, Eq. 1–3): parameter-free visual-prompt encoding.

This block is the paper's own (MMDet has no equivalent). A prompt mask is resized to the grid of
the global image features; features and mask are partitioned into a real ``G_h × G_w`` spatial grid
of patches; inside patch ``n`` the Hadamard product of features and the patch-normalised mask is
summed over the patch's pixels (Eq. 1), giving one token per patch; a parameter-free sinusoidal
(cosine) encoding of the patch index with temperature ``T`` (Eq. 2) is added with ``λ = 1``
(Eq. 3). The tokens then go through the projector shared with the image tokens.

Normalisation (the paper's "normalized masks"): inside each patch the mask weights sum to 1, so a
token is the mask-weighted mean feature of its patch; a patch the prompt does not touch gives a
zero feature (plus its positional code). Patches follow ``adaptive_avg_pool2d``'s partition, so
grids that do not divide the feature map are still exact partitions.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmrefvlm.registry import MODELS


def cosine_position_encoding(num_positions: int, channels: int, temperature: float,
                             device=None, dtype=None) -> Tensor:
    """Eq. 2: ``PE[n, 2i] = sin(n / T^(2i/C))``, ``PE[n, 2i+1] = cos(n / T^(2i/C))``.

    Returns:
        ``[num_positions, channels]``.
    """
    position = torch.arange(num_positions, device=device, dtype=torch.float32)[:, None]
    index = torch.arange(0, channels, 2, device=device, dtype=torch.float32)
    angle = position / temperature**(index / channels)
    encoding = torch.zeros(num_positions, channels, device=device, dtype=torch.float32)
    encoding[:, 0::2] = torch.sin(angle)
    encoding[:, 1::2] = torch.cos(angle[:, :channels // 2])
    return encoding.to(dtype) if dtype is not None else encoding


@MODELS.register_module()
class MaskGuidedAggregation(nn.Module):
    """Encode visual prompts as ``G_h × G_w`` tokens each (no learnable parameters).

    Args:
        grid: number of patches along (height, width); a prompt becomes ``G_h * G_w`` tokens.
        temperature: ``T`` of Eq. 2.
        pe_weight: ``λ`` of Eq. 3 (the paper fixes it to 1).
    """

    def __init__(self, grid: Tuple[int, int] = (2, 2), temperature: float = 10000.0,
                 pe_weight: float = 1.0) -> None:
        super().__init__()
        self.grid = tuple(grid)
        self.temperature = temperature
        self.pe_weight = pe_weight

    @property
    def num_tokens(self) -> int:
        return self.grid[0] * self.grid[1]

    def forward(self, features: Tensor, masks: Tensor) -> Tensor:
        """Aggregate one image's features under its prompt masks.

        Args:
            features: ``[C, H, W]`` global features of one image (before the projector).
            masks: ``[P, S_h, S_w]`` prompt masks on the canvas (0/1 or soft), any resolution.

        Returns:
            ``[P, G_h * G_w, C]`` prompt tokens, patches in row-major order.
        """
        channels = features.shape[0]
        if masks.numel() == 0:
            return features.new_zeros(0, self.num_tokens, channels)
        # area interpolation keeps the fraction of each feature cell the prompt covers
        weights = F.interpolate(
            masks[:, None].to(features.dtype), size=features.shape[-2:], mode='area')
        weighted = F.adaptive_avg_pool2d(features[None] * weights, self.grid)  # [P, C, Gh, Gw]
        coverage = F.adaptive_avg_pool2d(weights, self.grid)  # [P, 1, Gh, Gw]
        tokens = torch.where(coverage > 0, weighted / coverage.clamp_min(1e-12),
                             torch.zeros_like(weighted))
        tokens = tokens.flatten(2).transpose(1, 2)  # [P, Gh*Gw, C]
        encoding = cosine_position_encoding(
            self.num_tokens, channels, self.temperature, features.device, features.dtype)
        return tokens + self.pe_weight * encoding

    def extra_repr(self) -> str:
        return f'grid={self.grid}, temperature={self.temperature}, pe_weight={self.pe_weight}'

