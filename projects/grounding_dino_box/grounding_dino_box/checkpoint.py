"""Loading MMDetection's Grounding DINO weights (e.g. ``groundingdino_swint_ogc_mmdet-*.pth``)
into :class:`GroundingDINORefBoxHead` (whose Grounding DINO modules live under ``gdino.``)."""
from typing import Dict, List, Tuple

import torch
from torch import Tensor, nn

from mmrefvlm.models.heads.pretrained import load_exact_state_dict

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
    return load_exact_state_dict(
        head.gdino, source, path, 'GroundingDINORefBoxHead: Grounding DINO',
        "MMDetection's converted weights are expected: tools/model_converters/"
        'groundingdino_to_mmdet.py converts the official ones')
