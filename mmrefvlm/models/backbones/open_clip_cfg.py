"""Resolving an open_clip vision-tower config from the locally shipped architectures."""
from typing import Optional, Tuple

import open_clip


def open_clip_vision_cfg(model_name: Optional[str], vision_cfg: Optional[dict],
                         quick_gelu: Optional[bool], owner: str) -> Tuple[dict, bool]:
    """Resolve the open_clip vision config and activation of a tower.

    Args:
        model_name: an open_clip architecture name known locally (``open_clip.list_models()``).
        vision_cfg: an explicit ``CLIPVisionCfg`` dict; when given it replaces the named
            architecture's vision config (used for tiny random-init test towers).
        quick_gelu: force QuickGELU on/off; None takes the architecture's setting.
        owner: the tower's class name, used in error messages.

    Returns:
        ``(vision_cfg, quick_gelu)``.
    """
    if vision_cfg is not None:
        cfg = dict(vision_cfg)
        default_quick_gelu = False
    else:
        if model_name not in open_clip.list_models():
            raise ValueError(
                f'{owner}: model_name={model_name!r} is not an open_clip architecture '
                f'shipped with open_clip (see open_clip.list_models()); pass vision_cfg=dict(...) '
                f'for a custom one.')
        model_cfg = open_clip.get_model_config(model_name)
        cfg = dict(model_cfg['vision_cfg'])
        default_quick_gelu = bool(model_cfg.get('quick_gelu', False))
    return cfg, default_quick_gelu if quick_gelu is None else quick_gelu
