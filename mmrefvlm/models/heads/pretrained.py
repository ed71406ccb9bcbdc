"""What a head built around a pretrained network needs (the external decoders of ``projects/``):
its images in the network's own normalisation, and its released weights loaded exactly (every key
present, none extra, every shape the module's)."""
from typing import Dict, List, Sequence

import torch
from mmengine.logging import MMLogger
from torch import Tensor, nn

# How many keys of each kind the error quotes.
QUOTED_KEYS = 5


def load_exact_state_dict(module: nn.Module, state: Dict[str, Tensor], source: str, owner: str,
                          hint: str = '') -> List[str]:
    """``module.load_state_dict(state)`` after checking that the keys and shapes are exactly the
    module's.

    Args:
        module: the sub-module to fill (e.g. a head's pretrained decoder).
        state: the checkpoint's tensors, keyed as ``module.state_dict()``.
        source: where they came from (a path), for the messages.
        owner: who loads them (e.g. ``'MyHead: its decoder'``), for the messages.
        hint: what to check when they do not fit, appended to the error.

    Returns:
        list: the keys loaded, sorted.

    Raises:
        ValueError: naming the missing, unexpected and mis-shaped keys.
    """
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    misshaped = sorted(key for key in set(own) & set(state)
                       if own[key].shape != state[key].shape)
    if missing or unexpected or misshaped:
        shapes = [(key, tuple(state[key].shape), tuple(own[key].shape))
                  for key in misshaped[:QUOTED_KEYS]]
        raise ValueError(
            f'{owner}: {source} does not match the architecture: {len(missing)} missing keys '
            f'{missing[:QUOTED_KEYS]}, {len(unexpected)} unexpected keys '
            f'{unexpected[:QUOTED_KEYS]}, {len(misshaped)} keys of another shape (checkpoint, '
            f'model) {shapes}' + (f' ({hint})' if hint else ''))
    module.load_state_dict(state)
    MMLogger.get_current_instance().info(f'{owner}: loaded {len(state)} tensors from {source}')
    return sorted(state)


class Renormalise(nn.Module):
    """Images normalised with ``(mean, std)`` (the data preprocessor's) → normalised with
    ``(target_mean, target_std)`` (a pretrained network's): one affine map per channel.

    Args:
        mean, std: the input's normalisation, per channel (RGB, 0-255 pixel units).
        target_mean, target_std: the network's.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float],
                 target_mean: Sequence[float], target_std: Sequence[float]) -> None:
        super().__init__()
        target_mean, target_std = torch.tensor(target_mean), torch.tensor(target_std)
        scale = torch.tensor(std) / target_std
        shift = (torch.tensor(mean) - target_mean) / target_std
        self.register_buffer('scale', scale.view(1, 3, 1, 1), persistent=False)
        self.register_buffer('shift', shift.view(1, 3, 1, 1), persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        """``images [B, 3, H, W]`` → the same, renormalised (float32)."""
        return images.float() * self.scale + self.shift
