"""Fuse and flatten the vision pyramid into one key/value sequence for the decoder heads
(paper §4.3: "the image feature pyramid undergoes fusion and flattening operations")."""
from typing import Sequence, Tuple

import torch
from mmcv.cnn import ConvModule
from mmdet.models.layers import SinePositionalEncoding
from torch import Tensor, nn

from .canvas import canvas_padding_masks


class PyramidFusion(nn.Module):
    """Project every pyramid level to ``embed_dims``, add positions, flatten and concatenate.

    Each level: 1×1 conv + GroupNorm → ``embed_dims``; position = MMDet's normalised
    ``SinePositionalEncoding`` (computed over the valid image area) + a learned level embedding.

    Args:
        in_channels: channels of each pyramid level, strides ascending.
        embed_dims: output width (even).
        num_groups: GroupNorm groups (must divide ``embed_dims``).
    """

    def __init__(self, in_channels: Sequence[int], embed_dims: int, num_groups: int = 32) -> None:
        super().__init__()
        if embed_dims % 2 or embed_dims % num_groups:
            raise ValueError(f'PyramidFusion: embed_dims={embed_dims} must be even and a '
                             f'multiple of num_groups={num_groups}')
        self.in_channels = tuple(in_channels)
        self.embed_dims = embed_dims
        self.projections = nn.ModuleList(
            ConvModule(c, embed_dims, kernel_size=1, norm_cfg=dict(type='GN',
                                                                   num_groups=num_groups),
                       act_cfg=None) for c in self.in_channels)
        self.positional_encoding = SinePositionalEncoding(num_feats=embed_dims // 2,
                                                          normalize=True)
        self.level_embed = nn.Parameter(torch.zeros(len(self.in_channels), embed_dims))
        nn.init.normal_(self.level_embed)

    def forward(self, pyramid: Sequence[Tensor],
                batch_img_metas: Sequence[dict]) -> Tuple[Tensor, Tensor, Tensor]:
        """Fuse the pyramid.

        Args:
            pyramid: per level ``[B, C_i, S / s_i, S / s_i]``.
            batch_img_metas: per sample, ``img_shape`` and ``pad_shape``.

        Returns:
            tuple: ``memory [B, N, embed_dims]``, ``memory_pos [B, N, embed_dims]`` and
            ``memory_padding_mask [B, N]`` (True on canvas padding), ``N = Σ h_i w_i`` in level
            order, row-major inside a level.
        """
        if len(pyramid) != len(self.in_channels):
            raise ValueError(f'PyramidFusion: got {len(pyramid)} pyramid levels, configured for '
                             f'{len(self.in_channels)} (in_channels={self.in_channels})')
        sizes = [tuple(feat.shape[-2:]) for feat in pyramid]
        pad_masks = canvas_padding_masks(batch_img_metas, sizes, pyramid[0].device)
        memory, memory_pos, memory_mask = [], [], []
        for level, (feat, pad_mask) in enumerate(zip(pyramid, pad_masks)):
            feat = self.projections[level](feat)
            pos = self.positional_encoding(pad_mask).to(feat.dtype)
            pos = pos + self.level_embed[level][None, :, None, None]
            memory.append(feat.flatten(2).transpose(1, 2))
            memory_pos.append(pos.flatten(2).transpose(1, 2))
            memory_mask.append(pad_mask.flatten(1))
        return torch.cat(memory, 1), torch.cat(memory_pos, 1), torch.cat(memory_mask, 1)


def memory_coordinates(sizes: Sequence[Tuple[int, int]], device=None) -> Tensor:
    """Centre of every fused memory token, normalised by the canvas.

    Args:
        sizes: ``(h_i, w_i)`` of each pyramid level, in fusion order.

    Returns:
        Tensor: ``[N, 2]`` ``(x, y)`` in ``(0, 1)``, in the order of :class:`PyramidFusion`'s
        output (levels in order, row-major inside a level).
    """
    coords = []
    for height, width in sizes:
        ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height
        xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing='ij')
        coords.append(torch.stack([grid_x.flatten(), grid_y.flatten()], -1))
    return torch.cat(coords)
