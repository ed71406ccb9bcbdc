"""Loading Grounding DINO's released weights (MMDetection's layout) into
:class:`GroundingDINORefBoxHead` (whose Grounding DINO modules live under ``gdino.``)."""
from typing import Dict, List

import torch
from mmengine.logging import MMLogger
from torch import Tensor, nn

# The parts of Grounding DINO's checkpoint that ``head.gdino`` holds (``ref_text_map`` is new).
GDINO_PARTS = ('backbone', 'neck', 'encoder', 'decoder', 'level_embed', 'memory_trans_fc',
               'memory_trans_norm', 'reg_branches')
# Checkpoint key prefix → the head's: the box branches live in MMDetection's bbox_head.
_RENAMED = {'bbox_head.reg_branches.': 'reg_branches.'}


def gdino_state_dict(checkpoint: dict) -> Dict[str, Tensor]:
    """The tensors of a Grounding DINO checkpoint (MMDetection's ``GroundingDINO`` state dict,
    plain or under ``state_dict``, DDP ``module.`` stripped) that ``head.gdino`` holds, under
    its names. BERT, ``text_feat_map``, ``query_embedding``, the contrastive class branches
    and the denoising generator are not used."""
    state = checkpoint.get('state_dict', checkpoint)
    if state and all(key.startswith('module.') for key in state):
        state = {key[len('module.'):]: value for key, value in state.items()}
    renamed = {}
    for key, value in state.items():
        for old, new in _RENAMED.items():
            if key.startswith(old):
                key = new + key[len(old):]
        if key.split('.')[0] in GDINO_PARTS:
            renamed[key] = value
    return renamed


def load_gdino_state(head: nn.Module, path: str) -> List[str]:
    """Copy Grounding DINO's weights from ``path`` into ``head.gdino``; every one of its keys
    must be present with its shape.

    Returns:
        list: the keys loaded (``head.gdino``'s names), sorted.

    Raises:
        ValueError: naming the missing, unexpected or mis-shaped keys.
    """
    source = gdino_state_dict(torch.load(path, map_location='cpu', weights_only=True))
    own = head.gdino.state_dict()
    missing = sorted(set(own) - set(source))
    unexpected = sorted(set(source) - set(own))
    misshaped = sorted(key for key in set(own) & set(source)
                       if own[key].shape != source[key].shape)
    if missing or unexpected or misshaped:
        raise ValueError(
            f'GroundingDINORefBoxHead: {path} does not match the head\'s architecture: '
            f'{len(missing)} missing keys {missing[:5]}, {len(unexpected)} unexpected keys '
            f'{unexpected[:5]}, {len(misshaped)} keys of another shape {misshaped[:5]}')
    head.gdino.load_state_dict(source)
    MMLogger.get_current_instance().info(
        f'GroundingDINORefBoxHead: loaded {len(source)} Grounding DINO tensors from {path}')
    return sorted(source)
