"""The paper's visual encoding: CLIP-ViT global tokens + CLIP-ConvNeXt pyramid, concatenated."""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from mmrefvlm.registry import MODELS


def nearest_stride_level(strides: Tuple[int, ...], effective_stride: float) -> int:
    """Index of the stride closest to ``effective_stride`` on a log scale (ties: the finer)."""
    distances = [abs(math.log2(s) - math.log2(effective_stride)) for s in strides]
    return distances.index(min(distances))


@MODELS.register_module()
class DualCLIPTower(BaseModule):
    """CLIP-ViT for the LLM, CLIP-ConvNeXt + ViT features for the visual decoders (paper §4.1).

    "The outputs of both encoders are concatenated": the global tokens are the ViT's (LLaVA
    convention, penultimate layer); the pyramid is the ConvNeXt's four stages, with the ViT
    patch-token map (reshaped to ``[B, C_vit, h, w]`` and resized bilinearly) concatenated on
    the channels of **one** level: the one whose stride is nearest (log scale) to the ViT
    grid's effective stride on the canvas, ``dense.image_size / h``. For the paper's encoders
    (ViT-L/14 at 336, a 24 x 24 grid, and ConvNeXt-L at 512) that stride is 21.3, so the ViT
    map is upsampled 24 -> 32 and concatenated to the stride-16 level:
    ``pyramid_channels = (192, 384, 768 + 1024, 1536)``. ``fuse_level`` overrides the choice.

    Args:
        global_tower: config of the ViT tower (e.g. ``OpenCLIPViTTower``).
        dense_tower: config of the ConvNeXt tower (e.g. ``OpenCLIPConvNeXtTower``).
        fuse_level: pyramid index receiving the ViT map; None picks the nearest stride.
    """

    def __init__(self, global_tower: dict, dense_tower: dict,
                 fuse_level: Optional[int] = None) -> None:
        super().__init__()
        self.global_tower = MODELS.build(global_tower)
        self.dense_tower = MODELS.build(dense_tower)
        strides = tuple(self.dense_tower.pyramid_strides)
        if fuse_level is None:
            if not hasattr(self.dense_tower, 'image_size'):
                raise ValueError('DualCLIPTower: the dense tower has no `image_size`; set '
                                 '`fuse_level` explicitly')
            fuse_level = nearest_stride_level(
                strides, self.dense_tower.image_size / self.global_tower.global_grid[0])
        if not 0 <= fuse_level < len(strides):
            raise ValueError(f'DualCLIPTower: fuse_level={fuse_level} is not an index of the '
                             f'dense pyramid (strides {strides})')
        self.fuse_level = fuse_level

        self.global_channels = self.global_tower.global_channels
        self.global_grid = tuple(self.global_tower.global_grid)
        channels = list(self.dense_tower.pyramid_channels)
        channels[fuse_level] += self.global_channels
        self.pyramid_channels = tuple(channels)
        self.pyramid_strides = strides

    def forward(self, images: Tensor) -> Tuple[Tensor, Tuple[Tensor, ...]]:
        """Encode the canvas with both towers.

        Args:
            images: ``[B, 3, S, S]`` normalised canvas (both CLIPs share the CLIP mean/std).

        Returns:
            ``global_tokens [B, h * w, C_vit]`` from the ViT and the pyramid
            ``([B, pyramid_channels[i], S / s_i, S / s_i] for s_i in pyramid_strides)``.
        """
        global_tokens, _ = self.global_tower(images)
        _, dense = self.dense_tower(images)

        target = dense[self.fuse_level]
        vit_map = global_tokens.transpose(1, 2).reshape(
            global_tokens.shape[0], self.global_channels, *self.global_grid)
        vit_map = F.interpolate(vit_map.to(target.dtype), size=target.shape[-2:],
                                mode='bilinear', align_corners=False)
        pyramid = list(dense)
        pyramid[self.fuse_level] = torch.cat([target, vit_map], dim=1)
        return global_tokens, tuple(pyramid)
