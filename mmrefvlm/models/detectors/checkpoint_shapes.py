"""Refuse a checkpoint whose tensors have other shapes than the model's.

MMEngine loads checkpoints (``load_from``, ``init_cfg=dict(type='Pretrained')``, resume) with
``strict=False``: a tensor whose shape differs is logged and left at its initialisation, so a
checkpoint of another config (say ``box.embed_dims=64``) evaluates randomly initialised heads
and exits 0. Missing and unexpected keys stay allowed (a stage adds heads to the previous
stage's weights); a shape mismatch stops the load unless the model allows it.
"""
from typing import Dict, List, Tuple

from torch import nn

# How many mismatched keys the error quotes.
QUOTED_KEYS = 20


def mismatched_shapes(module: nn.Module, state_dict: Dict[str, object],
                      prefix: str = '') -> List[Tuple[str, tuple, tuple]]:
    """``(key, checkpoint shape, model shape)`` of every tensor of ``state_dict`` (keys under
    ``prefix``) whose shape differs from the module's (ZeRO-3 partitioned parameters count with
    their full ``ds_shape``)."""
    own = {name: tuple(getattr(tensor, 'ds_shape', tensor.shape))
           for name, tensor in module.state_dict(keep_vars=True).items()}
    found = []
    for key, value in state_dict.items():
        name = key[len(prefix):]
        if key.startswith(prefix) and name in own and hasattr(value, 'shape') \
                and tuple(value.shape) != own[name]:
            found.append((name, tuple(value.shape), own[name]))
    return found


def refuse_mismatched_shapes(module: nn.Module, state_dict: Dict[str, object], prefix: str,
                             *args) -> None:
    """``load_state_dict`` pre-hook of a model: raise ``ValueError`` listing every key whose
    shape differs, whatever loads the checkpoint."""
    found = mismatched_shapes(module, state_dict, prefix)
    if not found:
        return
    lines = [f'  {name}: checkpoint {list(ckpt)}, model {list(model)}'
             for name, ckpt, model in found[:QUOTED_KEYS]]
    more = len(found) - QUOTED_KEYS
    raise ValueError(
        f'{type(module).__name__}: the checkpoint does not fit this model (written by another '
        f'config?): {len(found)} tensors differ in shape:\n' + '\n'.join(lines) +
        (f'\n  ... and {more} more' if more > 0 else '') +
        '\nTo load the other tensors and keep these at their initialisation, set '
        'model.allow_mismatched_shapes=True (e.g. --cfg-options '
        'model.allow_mismatched_shapes=True).')
