"""Reading open_clip weights from a local file (never from a model hub)."""
import os.path as osp
from typing import Dict, Sequence, Set

from open_clip.factory import load_state_dict
from torch import Tensor, nn


def read_local_state_dict(path: str, owner: str) -> Dict[str, Tensor]:
    """Read a state dict from a local checkpoint file.

    Accepts what open_clip writes (``.bin`` / ``.pt`` / ``.pth`` / ``.safetensors``, optionally
    nested under ``'state_dict'`` or prefixed ``module.``). Hub tags such as ``'openai'`` or
    ``'laion2b_s29b_b131k_ft_soup'`` are refused: no network access ever happens here.

    Args:
        path: the value of the config key ``pretrained``.
        owner: the tower's class name, used in error messages.

    Returns:
        The flat state dict.
    """
    if not isinstance(path, str) or not osp.isfile(path):
        raise FileNotFoundError(
            f'{owner}: pretrained={path!r} is not an existing local file. The config key '
            f'`pretrained` takes the path of a downloaded open_clip checkpoint (or None for '
            f'random init); hub names are not accepted because no model hub is reachable.')
    return load_state_dict(path, device='cpu')


def select_prefixed(state_dict: Dict[str, Tensor], prefixes: Sequence[str],
                    owner: str, path: str) -> Dict[str, Tensor]:
    """Return the entries under the first prefix of ``prefixes`` present, with it stripped.

    Used to take the vision tower (``'visual.'``) out of a full CLIP checkpoint, or the timm
    trunk (``'visual.trunk.'`` / ``'trunk.'``) out of a ConvNeXt one. The empty prefix ``''``
    matches any state dict, so list it last.
    """
    for prefix in prefixes:
        selected = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        if selected:
            return selected
    raise KeyError(f'{owner}: {path}: no weights under any of the prefixes {list(prefixes)}')


def load_into(module: nn.Module, state_dict: Dict[str, Tensor], pruned_keys: Set[str],
              owner: str, path: str) -> None:
    """Load ``state_dict`` into ``module`` strictly, except for weights the tower pruned.

    A checkpoint may hold the full encoder (blocks after the selected layer, final norm, head)
    or only what the tower keeps (its own ``state_dict()``); both load. Every weight the tower
    keeps must be present, and nothing else than ``pruned_keys`` may be left over.
    """
    try:
        result = module.load_state_dict(state_dict, strict=False)
    except RuntimeError as err:  # shape mismatches
        raise RuntimeError(f'{owner}: {path} does not match the configured encoder: {err}') \
            from err
    unexpected = [k for k in result.unexpected_keys if k not in pruned_keys]
    if result.missing_keys or unexpected:
        raise RuntimeError(
            f'{owner}: {path} does not match the configured encoder: missing keys '
            f'{result.missing_keys[:8]}, unexpected keys {unexpected[:8]}')
