"""Loading SAM's released weights (``sam_vit_{b,l,h}_*.pth``) into :class:`SAMRefMaskHead`
(whose SAM modules live under ``sam.``)."""
from typing import Dict, List

import torch
from mmengine.logging import MMLogger
from torch import Tensor, nn

# The sub-modules of segment_anything's ``Sam`` whose keys the released checkpoints hold.
SAM_PARTS = ('image_encoder', 'prompt_encoder', 'mask_decoder')


def sam_state_dict(checkpoint: dict) -> Dict[str, Tensor]:
    """SAM's tensors of a checkpoint: the released plain state dict, an MMEngine checkpoint
    (``state_dict``), DDP (``module.``) or a ``Sam`` wrapped as ``sam.``."""
    state = checkpoint.get('state_dict', checkpoint)
    for prefix in ('module.', 'sam.'):
        if state and all(key.startswith(prefix) for key in state):
            state = {key[len(prefix):]: value for key, value in state.items()}
    return {key: value for key, value in state.items() if key.split('.')[0] in SAM_PARTS}


def load_sam_state(head: nn.Module, path: str) -> List[str]:
    """Copy SAM's weights from ``path`` into ``head.sam.image_encoder``, ``prompt_encoder`` and
    ``mask_decoder``; every key of those three must be present with its shape.

    Returns:
        list: the checkpoint's keys loaded (SAM's names, without ``sam.``), sorted.

    Raises:
        ValueError: naming the missing, unexpected or mis-shaped keys (e.g. a ViT-H
            checkpoint for a ViT-L head).
    """
    source = sam_state_dict(torch.load(path, map_location='cpu', weights_only=True))
    own = head.sam.state_dict()
    missing = sorted(set(own) - set(source))
    unexpected = sorted(set(source) - set(own))
    misshaped = sorted(key for key in set(own) & set(source)
                       if own[key].shape != source[key].shape)
    if missing or unexpected or misshaped:
        raise ValueError(
            f'SAMRefMaskHead: {path} does not match the head\'s SAM architecture: '
            f'{len(missing)} missing keys {missing[:5]}, {len(unexpected)} unexpected keys '
            f'{unexpected[:5]}, {len(misshaped)} keys of another shape '
            f'{[(k, tuple(source[k].shape), tuple(own[k].shape)) for k in misshaped[:5]]} '
            '(is image_encoder the checkpoint\'s variant, e.g. SAM_VIT_L for sam_vit_l?)')
    head.sam.load_state_dict(source)
    MMLogger.get_current_instance().info(
        f'SAMRefMaskHead: loaded {len(source)} SAM tensors from {path}')
    return sorted(source)
