"""Loading SAM's released weights (``sam_vit_{b,l,h}_*.pth``) into :class:`SAMRefMaskHead`
(whose SAM modules live under ``sam.``)."""
from typing import Dict, List

import torch
from torch import Tensor, nn

from mmrefvlm.models.heads.pretrained import load_exact_state_dict

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
    return load_exact_state_dict(
        head.sam, sam_state_dict(torch.load(path, map_location='cpu', weights_only=True)), path,
        'SAMRefMaskHead: SAM', "is image_encoder the checkpoint's variant, e.g. SAM_VIT_L for "
        'sam_vit_l?')
