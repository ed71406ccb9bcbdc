"""CLIP-ViT global tower: the LLaVA-style image tokens fed to the LLM (paper §4.1)."""
import types
from typing import Dict, Optional, Set, Tuple

import torch.nn.functional as F
from open_clip.model import _build_vision_tower, resize_pos_embed
from open_clip.transformer import VisionTransformer
from torch import Tensor

from mmrefvlm.registry import MODELS
from .base_tower import VisionTower, resize_square
from .checkpoint import load_into, read_local_state_dict, select_prefixed
from .open_clip_cfg import open_clip_vision_cfg


@MODELS.register_module()
class OpenCLIPViTTower(VisionTower):
    """open_clip CLIP-ViT returning the penultimate layer's patch tokens (LLaVA convention).

    The input canvas is resized (bilinear) to the ViT's own input size, so the global tokens do
    not depend on the canvas size ``S``. The class token is dropped and no final LayerNorm or
    projection is applied. Blocks after ``select_layer`` are removed (they never contribute).

    The pyramid holds one map: the same tokens as a ``[B, C, h, w]`` map, bilinearly resized to
    the canvas grid ``floor(S / p)`` of stride ``p = patch_size`` when ``S`` is not the ViT's
    input size (so a ViT-only model, paper Table 8, still offers dense features).

    The paper's encoder is OpenAI's CLIP-ViT-L/14-336, trained with QuickGELU: load its weights
    with ``model_name='ViT-L-14-336-quickgelu'`` (or ``quick_gelu=True``).

    Args:
        model_name: open_clip architecture name, e.g. ``'ViT-L-14-336'``.
        pretrained: None (random init) or the path of a local open_clip checkpoint, either a
            full CLIP state dict (``visual.*`` keys) or the vision tower's own state dict.
        image_size: the ViT input size; None keeps the architecture's. A checkpoint trained at
            another size has its position embedding resampled (open_clip's ``resize_pos_embed``).
        select_layer: index of the transformer block whose output is taken (-2: penultimate).
        frozen: freeze the tower (paper App. D: both CLIP encoders are frozen).
        vision_cfg: explicit open_clip vision config replacing the named one (tiny tests).
        quick_gelu: force QuickGELU; None takes the architecture's setting.
    """

    def __init__(self,
                 model_name: Optional[str] = 'ViT-L-14-336',
                 pretrained: Optional[str] = None,
                 image_size: Optional[int] = None,
                 select_layer: int = -2,
                 frozen: bool = True,
                 vision_cfg: Optional[dict] = None,
                 quick_gelu: Optional[bool] = None) -> None:
        super().__init__(frozen=frozen)
        owner = type(self).__name__
        # Read the checkpoint first so that a bad path fails before building a large model.
        checkpoint = None if pretrained is None else read_local_state_dict(pretrained, owner)
        cfg, quick_gelu = open_clip_vision_cfg(model_name, vision_cfg, quick_gelu, owner)
        if image_size is not None:
            cfg['image_size'] = image_size
        # embed_dim only sizes the contrastive projection, which is pruned below.
        self.visual = _build_vision_tower(embed_dim=1, vision_cfg=cfg, quick_gelu=quick_gelu)
        if not isinstance(self.visual, VisionTransformer):
            raise TypeError(f'{owner}: {model_name or cfg} is not a ViT open_clip tower '
                            f'(got {type(self.visual).__name__})')
        num_layers = len(self.visual.transformer.resblocks)
        if not -num_layers <= select_layer < num_layers:
            raise ValueError(f'{owner}: select_layer={select_layer} is out of range for '
                             f'{num_layers} transformer layers')
        self.select_layer = select_layer % num_layers
        full_keys = set(self.visual.state_dict())
        self.visual.prune_intermediate_layers(
            indices=[self.select_layer], prune_norm=True, prune_head=True)
        pruned_keys = full_keys - set(self.visual.state_dict())
        if checkpoint is not None:
            self._load_pretrained(checkpoint, pretrained, pruned_keys)

        self.image_size = int(self.visual.image_size[0])
        self.patch_size = int(self.visual.patch_size[0])
        grid = self.visual.grid_size
        self.global_channels = int(self.visual.transformer.width)
        self.global_grid = (int(grid[0]), int(grid[1]))
        self.pyramid_channels = (self.global_channels,)
        self.pyramid_strides = (self.patch_size,)
        # Weights are set at construction; the runner's init_weights must not overwrite them.
        self._is_init = True
        if frozen:
            self._freeze()

    def _load_pretrained(self, checkpoint: Dict[str, Tensor], path: str,
                         pruned_keys: Set[str]) -> None:
        owner = type(self).__name__
        state_dict = select_prefixed(checkpoint, ('visual.', ''), owner, path)
        if 'positional_embedding' in state_dict:
            # open_clip's resampler reads and writes the full-CLIP key
            wrapped = {'visual.positional_embedding': state_dict['positional_embedding']}
            resize_pos_embed(wrapped, types.SimpleNamespace(visual=self.visual))
            state_dict['positional_embedding'] = wrapped['visual.positional_embedding']
        load_into(self.visual, state_dict, pruned_keys, owner, path)

    def _patch_tokens(self, images: Tensor) -> Tensor:
        """Patch tokens of the selected layer.

        Args:
            images: ``[B, 3, S, S]`` normalised with the CLIP mean/std, any canvas size ``S``.

        Returns:
            ``[B, h * w, C]`` tokens, row-major over the ``global_grid`` ``(h, w)``.
        """
        with self.grad_context():
            x = resize_square(images, self.image_size).to(self.param_dtype)
            out = self.visual.forward_intermediates(
                x, indices=[self.select_layer], stop_early=True, intermediates_only=True,
                output_fmt='NLC')
        return out['image_intermediates'][0]

    def forward(self, images: Tensor) -> Tuple[Tensor, Tuple[Tensor]]:
        """Global tokens and a one-level pyramid.

        Args:
            images: ``[B, 3, S, S]`` normalised canvas.

        Returns:
            ``global_tokens [B, h * w, C]`` (row-major over ``global_grid``) and
            ``(map [B, C, floor(S / p), floor(S / p)],)``.
        """
        tokens = self._patch_tokens(images)
        size = images.shape[-1] // self.patch_size
        grid_map = tokens.transpose(1, 2).reshape(
            tokens.shape[0], self.global_channels, *self.global_grid)
        if grid_map.shape[-2:] != (size, size):
            grid_map = F.interpolate(
                grid_map, size=(size, size), mode='bilinear', align_corners=False)
        return tokens, (grid_map,)
