"""CLIP-ConvNeXt dense tower: the multi-scale local features of the visual decoders (paper §4.1)."""
from typing import Dict, Optional, Set, Tuple

import torch.nn.functional as F
from open_clip.model import _build_vision_tower
from torch import Tensor

from mmrefvlm.registry import MODELS
from .base_tower import VisionTower, resize_square
from .checkpoint import load_into, read_local_state_dict, select_prefixed
from .open_clip_cfg import open_clip_vision_cfg


@MODELS.register_module()
class OpenCLIPConvNeXtTower(VisionTower):
    """open_clip ConvNeXt (a timm trunk) returning its four stage maps (strides 4, 8, 16, 32).

    The canvas is resized (bilinear) to ``image_size`` before the trunk; when the canvas size
    ``S`` differs, every stage map is resized back to ``S / s_i`` so the pyramid always lives on
    the canvas grid. The global tokens are the last stage flattened row-major (used when the
    ConvNeXt is the only encoder; :class:`DualCLIPTower` takes them from the ViT instead).
    The trunk's classification head and open_clip's projection are dropped.

    Args:
        model_name: open_clip architecture name, e.g. ``'convnext_large_d_320'``.
        pretrained: None (random init) or the path of a local open_clip checkpoint: a full CLIP
            state dict (``visual.trunk.*``), the vision tower's (``trunk.*``) or the trunk's own.
        image_size: the trunk's input size (paper App. D: 512).
        frozen: freeze the tower (paper App. D: both CLIP encoders are frozen).
        vision_cfg: explicit open_clip vision config replacing the named one, e.g.
            ``dict(timm_model_name='convnext_atto', timm_pool='', timm_proj='linear')``.
    """

    def __init__(self,
                 model_name: Optional[str] = 'convnext_large_d_320',
                 pretrained: Optional[str] = None,
                 image_size: int = 512,
                 frozen: bool = True,
                 vision_cfg: Optional[dict] = None) -> None:
        super().__init__(frozen=frozen)
        owner = type(self).__name__
        if image_size % 32:
            raise ValueError(f'{owner}: image_size={image_size} must be a multiple of 32')
        # Read the checkpoint first so that a bad path fails before building a large model.
        checkpoint = None if pretrained is None else read_local_state_dict(pretrained, owner)
        cfg, _ = open_clip_vision_cfg(model_name, vision_cfg, None, owner)
        if not cfg.get('timm_model_name'):
            raise TypeError(f'{owner}: {model_name or cfg} is not a timm-based open_clip tower')
        # No pretrained trunk from timm's hub, no stochastic depth in a feature extractor.
        cfg.update(image_size=image_size, timm_model_pretrained=False, timm_drop_path=None)
        # embed_dim only sizes the contrastive projection, which is dropped below.
        self.trunk = _build_vision_tower(embed_dim=1, vision_cfg=cfg).trunk
        full_keys = set(self.trunk.state_dict())
        self.trunk.prune_intermediate_layers(indices=4, prune_norm=True, prune_head=True)
        pruned_keys = full_keys - set(self.trunk.state_dict())
        if checkpoint is not None:
            self._load_pretrained(checkpoint, pretrained, pruned_keys)

        feature_info = self.trunk.feature_info[-4:]
        self.image_size = image_size
        self.pyramid_channels = tuple(int(info['num_chs']) for info in feature_info)
        self.pyramid_strides = tuple(int(info['reduction']) for info in feature_info)
        if self.pyramid_strides != (4, 8, 16, 32):
            raise ValueError(f'{owner}: expected stage strides (4, 8, 16, 32), '
                             f'got {self.pyramid_strides}')
        self.global_channels = self.pyramid_channels[-1]
        self.global_grid = (image_size // 32, image_size // 32)
        # Weights are set at construction; the runner's init_weights must not overwrite them.
        self._is_init = True
        if frozen:
            self._freeze()

    def _load_pretrained(self, checkpoint: Dict[str, Tensor], path: str,
                         pruned_keys: Set[str]) -> None:
        owner = type(self).__name__
        state_dict = select_prefixed(checkpoint, ('visual.trunk.', 'trunk.', ''), owner, path)
        load_into(self.trunk, state_dict, pruned_keys, owner, path)

    def _stages(self, images: Tensor) -> Tuple[Tensor, ...]:
        """The four stage maps at the trunk's own resolution.

        Args:
            images: ``[B, 3, S, S]`` normalised with the CLIP mean/std.

        Returns:
            ``[B, C_i, image_size / s_i, image_size / s_i]`` for ``s_i = 4, 8, 16, 32``.
        """
        with self.grad_context():
            x = resize_square(images, self.image_size).to(self.param_dtype)
            return tuple(self.trunk.forward_intermediates(
                x, indices=4, intermediates_only=True))

    def forward(self, images: Tensor) -> Tuple[Tensor, Tuple[Tensor, ...]]:
        """Global tokens and the 4-level pyramid on the canvas grid.

        Args:
            images: ``[B, 3, S, S]`` normalised canvas, ``S`` a multiple of 32.

        Returns:
            ``global_tokens [B, (image_size / 32) ** 2, C_3]`` and the pyramid
            ``([B, C_i, S / s_i, S / s_i] for s_i in (4, 8, 16, 32))``.
        """
        stages = self._stages(images)
        global_tokens = stages[-1].flatten(2).transpose(1, 2)
        canvas = images.shape[-1]
        pyramid = tuple(
            feat if feat.shape[-1] == canvas // stride else F.interpolate(
                feat, size=(canvas // stride, canvas // stride), mode='bilinear',
                align_corners=False)
            for feat, stride in zip(stages, self.pyramid_strides))
        return global_tokens, pyramid
