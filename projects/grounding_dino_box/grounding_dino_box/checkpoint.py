"""Loading MMDetection's Grounding DINO weights (e.g. ``groundingdino_swint_ogc_mmdet-*.pth``)
into :class:`GroundingDINORefBoxHead` (whose Grounding DINO modules live under ``gdino.``)."""
from typing import Dict, List, Tuple

import torch
from mmengine.logging import MMLogger
from torch import Tensor, nn

from .modules import TEXT_PREFIXES, UNUSED_PREFIXES


def gdino_state_dict(checkpoint: dict,
                     unused: Tuple[str, ...] = UNUSED_PREFIXES + TEXT_PREFIXES
                     ) -> Dict[str, Tensor]:
    """Grounding DINO's tensors of a checkpoint: MMDetection's (``state_dict``), a plain state
    dict, DDP's (``module.``) or the head's own (``gdino.``), but the keys under ``unused``
    (the learned content queries, the denoising embedding and, by default, BERT and its
    projection)."""
    state = checkpoint.get('state_dict', checkpoint)
    for prefix in ('module.', 'gdino.'):
        if state and all(key.startswith(prefix) for key in state):
            state = {key[len(prefix):]: value for key, value in state.items()}
    return {key: value for key, value in state.items() if not key.startswith(unused)}


def load_gdino_state(head: nn.Module, path: str) -> List[str]:
    """Copy Grounding DINO's weights from ``path`` into ``head.gdino`` (its BERT too, when the
    head has one); every key of it must be present with its shape, and the checkpoint may hold
    nothing else (but the unused parts).

    Returns:
        list: the checkpoint's keys loaded (MMDetection's names, without ``gdino.``), sorted.

    Raises:
        ValueError: naming the missing, unexpected or mis-shaped keys (e.g. a Swin-B checkpoint
            for a Swin-T head, or the official repository's unconverted names).
    """
    source = gdino_state_dict(torch.load(path, map_location='cpu', weights_only=True),
                              head.gdino.unused_prefixes)
    own = head.gdino.state_dict()
    missing = sorted(set(own) - set(source))
    unexpected = sorted(set(source) - set(own))
    misshaped = sorted(key for key in set(own) & set(source)
                       if own[key].shape != source[key].shape)
    if missing or unexpected or misshaped:
        raise ValueError(
            f'GroundingDINORefBoxHead: {path} does not match the head\'s Grounding DINO: '
            f'{len(missing)} missing keys {missing[:5]}, {len(unexpected)} unexpected keys '
            f'{unexpected[:5]}, {len(misshaped)} keys of another shape '
            f'{[(k, tuple(source[k].shape), tuple(own[k].shape)) for k in misshaped[:5]]} '
            '(MMDetection\'s converted weights are expected: tools/model_converters/'
            'groundingdino_to_mmdet.py converts the official ones)')
    head.gdino.load_state_dict(source)
    MMLogger.get_current_instance().info(
        f'GroundingDINORefBoxHead: loaded {len(source)} Grounding DINO tensors from {path}')
    return sorted(source)
