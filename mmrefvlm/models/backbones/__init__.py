"""Vision towers (``docs/internals.md`` §5): CLIP-ViT, CLIP-ConvNeXt, both, and a tiny CNN."""
from .base_tower import VisionTower
from .dual_clip import DualCLIPTower
from .openclip_convnext import OpenCLIPConvNeXtTower
from .openclip_vit import OpenCLIPViTTower
from .tiny_conv import TinyConvTower

__all__ = ['VisionTower', 'OpenCLIPViTTower', 'OpenCLIPConvNeXtTower', 'DualCLIPTower',
           'TinyConvTower']
