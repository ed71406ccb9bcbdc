"""Loading weights of :class:`UniPoseDecoder` into :class:`UniPoseRefKeypointHead` (whose
decoder lives under ``unipose.``).

No checkpoint of this exact module is published (the module is ours, built from MMDetection
layers in UniPose's manner), so the loader targets this module's own key layout: the decoder's
state dict, a head's (``unipose.`` keys), or a whole REFVLM checkpoint (``heads.keypoint.``),
plain or MMEngine (``state_dict``), with or without DDP's ``module.``. The official UniPose
release (``transformer.``, ``backbone.``... keys of IDEA-Research's code) is refused by name.
"""
from typing import Dict, List

import torch
from torch import Tensor, nn

from mmrefvlm.models.heads.pretrained import load_exact_state_dict

# Key prefixes of a whole REFVLM checkpoint and of the head, stripped in this order.
_PREFIXES = ('module.', 'heads.keypoint.', 'unipose.')
# Top-level names of the official UniPose / ED-Pose checkpoints (IDEA-Research's DINO-style code).
_OFFICIAL_UNIPOSE_PARTS = ('transformer', 'backbone', 'input_proj', 'bbox_embed', 'pose_embed')


def unipose_state_dict(checkpoint: dict) -> Dict[str, Tensor]:
    """The decoder's tensors of a checkpoint (see the module docstring), keyed as
    ``UniPoseDecoder.state_dict()``."""
    state = checkpoint.get('state_dict', checkpoint.get('model', checkpoint))
    for prefix in _PREFIXES:
        if any(key.startswith(prefix) for key in state):
            state = {key[len(prefix):]: value for key, value in state.items()
                     if key.startswith(prefix)}
    return state


def load_unipose_state(head: nn.Module, path: str) -> List[str]:
    """Copy the decoder's weights from ``path`` into ``head.unipose``; every key of the decoder
    must be present with its shape.

    Returns:
        list: the keys loaded (the decoder's names, without ``unipose.``), sorted.

    Raises:
        ValueError: for a checkpoint of the official UniPose code (named as such), or naming
            the missing, unexpected and mis-shaped keys of another architecture (other
            ``embed_dims``, layer counts, pyramid levels or name buckets).
    """
    source = unipose_state_dict(torch.load(path, map_location='cpu', weights_only=True))
    own = head.unipose.state_dict()
    if not set(own) & set(source) and {key.split('.')[0] for key in source} & set(
            _OFFICIAL_UNIPOSE_PARTS) - {'input_proj'}:
        raise ValueError(
            f'UniPoseRefKeypointHead: {path} looks like a checkpoint of the official UniPose '
            f'code (keys {sorted(source)[:3]}...); this head is a re-implementation from '
            'MMDetection layers with its own key layout and cannot load it')
    return load_exact_state_dict(
        head.unipose, source, path, 'UniPoseRefKeypointHead: UniPoseDecoder',
        "are embed_dims, the layer counts, memory_levels and num_name_buckets the checkpoint's?")
