"""A small trainable CNN tower for the offline tiny configs (ours; not in the paper)."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet.models.layers import SinePositionalEncoding
from torch import Tensor, nn

from mmrefvlm.registry import MODELS
from .base_tower import VisionTower


@MODELS.register_module()
class TinyConvTower(VisionTower):
    """Four conv stages (strides 4, 8, 16, 32) standing in for both CLIP towers.

    Our own tower for CPU-sized configs without pretrained weights, so it is trained with the
    rest of the model (``frozen=False``). All blocks are conv-norm-ReLU. Stage 0 is a 4x4
    stride-4 patchify stem (as in ConvNeXt), stages 1-3 start with a 3x3 stride-2 conv; each
    stage then adds ``depths[i]`` 3x3 blocks. The default keeps a forward pass at S=128,
    batch 8 around 20 ms on two CPU cores (~0.2 GMAC per image).
    The pyramid is the four stage maps; the global tokens are stage
    ``global_level`` (optionally average-pooled to ``global_pool x global_pool``) flattened
    row-major, plus a fixed 2-D sine position embedding (MMDet's ``SinePositionalEncoding``,
    normalised to the grid) so the LLM knows where each token lies.

    Args:
        in_channels: image channels.
        channels: widths of the four stages.
        depths: number of 3x3 blocks after each stage's downsampling conv.
        global_level: pyramid index giving the global tokens.
        global_pool: side of the pooled global grid; None keeps the level's full grid.
        image_size: the canvas size ``S`` (fixes ``global_grid``; must be a multiple of 32).
        norm_cfg: mmcv norm config of every conv block.
        frozen: freeze the tower (it has no pretrained weights, so normally False).
    """

    pyramid_strides = (4, 8, 16, 32)

    def __init__(self,
                 in_channels: int = 3,
                 channels: Sequence[int] = (32, 64, 128, 256),
                 depths: Sequence[int] = (1, 0, 0, 0),
                 global_level: int = 2,
                 global_pool: Optional[int] = None,
                 image_size: int = 128,
                 norm_cfg: Optional[dict] = None,
                 frozen: bool = False) -> None:
        super().__init__(frozen=frozen)
        if len(channels) != 4 or len(depths) != 4:
            raise ValueError(f'TinyConvTower: channels={tuple(channels)} and '
                             f'depths={tuple(depths)} must have 4 entries each')
        if not 0 <= global_level < 4:
            raise ValueError(f'TinyConvTower: global_level={global_level} must be in [0, 3]')
        if image_size % 32:
            raise ValueError(f'TinyConvTower: image_size={image_size} must be a multiple of 32')
        if channels[global_level] % 2:
            raise ValueError('TinyConvTower: the global level needs an even channel count for '
                             'the sine position embedding')
        norm_cfg = norm_cfg or dict(type='GN', num_groups=8)

        def block(cin: int, cout: int, stride: int = 1) -> ConvModule:
            return ConvModule(cin, cout, 3, stride=stride, padding=1, norm_cfg=norm_cfg)

        stages = []
        for i, (cout, depth) in enumerate(zip(channels, depths)):
            if i == 0:
                down = ConvModule(in_channels, cout, 4, stride=4, norm_cfg=norm_cfg)
            else:
                down = block(channels[i - 1], cout, stride=2)
            stages.append(nn.Sequential(down, *[block(cout, cout) for _ in range(depth)]))
        self.stages = nn.ModuleList(stages)

        level_grid = image_size // self.pyramid_strides[global_level]
        side = level_grid if global_pool is None else global_pool
        if not 0 < side <= level_grid:
            raise ValueError(f'TinyConvTower: global_pool={global_pool} must be in '
                             f'[1, {level_grid}] (the level-{global_level} grid)')
        self.global_level = global_level
        self.global_pool = global_pool
        self.image_size = image_size
        self.global_channels = int(channels[global_level])
        self.global_grid = (side, side)
        self.pyramid_channels = tuple(int(c) for c in channels)
        sine = SinePositionalEncoding(num_feats=self.global_channels // 2, normalize=True)
        pos = sine(torch.zeros(1, side, side, dtype=torch.bool))  # [1, C, side, side]
        self.register_buffer('pos_embed', pos.flatten(2).transpose(1, 2), persistent=False)
        if frozen:
            self._freeze()

    def forward(self, images: Tensor) -> Tuple[Tensor, Tuple[Tensor, ...]]:
        """Encode the canvas.

        Args:
            images: ``[B, 3, S, S]`` normalised canvas, ``S == image_size``.

        Returns:
            ``global_tokens [B, h * w, C_g]`` (row-major over ``global_grid``) and the pyramid
            ``([B, channels[i], S / s_i, S / s_i] for s_i in (4, 8, 16, 32))``.
        """
        if images.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f'TinyConvTower: expected a {self.image_size}x{self.image_size} '
                             f'canvas (image_size), got {tuple(images.shape[-2:])}')
        with self.grad_context():
            x = images.to(self.param_dtype)
            pyramid = []
            for stage in self.stages:
                x = stage(x)
                pyramid.append(x)
            grid = pyramid[self.global_level]
            if self.global_pool is not None:
                grid = F.adaptive_avg_pool2d(grid, self.global_grid)
            global_tokens = grid.flatten(2).transpose(1, 2) + self.pos_embed.to(grid.dtype)
        return global_tokens, tuple(pyramid)
