"""Loading :class:`UniPoseRefKeypointHead` weights from a local file."""
from typing import List

import torch
from mmengine.logging import MMLogger
from torch import nn

# Prefix of the keypoint head inside a full REFVLM checkpoint (``REFVLM.heads['keypoint']``).
_HEAD_PREFIX = 'heads.keypoint.'


def load_head_state(head: nn.Module, path: str) -> List[str]:
    """Copy every tensor of the head from ``path``: its own state dict, or a REFVLM (MMEngine)
    checkpoint holding it under ``heads.keypoint.`` (DDP ``module.`` stripped).

    Returns:
        list: the keys loaded, sorted.

    Raises:
        ValueError: naming the missing, unexpected or mis-shaped keys.
    """
    state = torch.load(path, map_location='cpu', weights_only=True)
    state = state.get('state_dict', state)
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    if any(key.startswith(_HEAD_PREFIX) for key in state):
        state = {k[len(_HEAD_PREFIX):]: v for k, v in state.items() if k.startswith(_HEAD_PREFIX)}
    own = head.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    misshaped = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or misshaped:
        raise ValueError(
            f'UniPoseRefKeypointHead: {path} does not match the head: {len(missing)} missing '
            f'keys {missing[:5]}, {len(unexpected)} unexpected keys {unexpected[:5]}, '
            f'{len(misshaped)} keys of another shape {misshaped[:5]}')
    head.load_state_dict(state)
    MMLogger.get_current_instance().info(
        f'UniPoseRefKeypointHead: loaded {len(state)} tensors from {path}')
    return sorted(state)
