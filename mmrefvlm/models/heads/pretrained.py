"""Loading a pretrained sub-module of a head exactly: every key present, none extra, every shape
the module's (the external decoders of ``projects/`` load their released weights with it)."""
from typing import Dict, List

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
