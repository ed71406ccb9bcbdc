"""Model weights out of a training checkpoint, whatever wrote it.

A run under MMEngine's ``Runner`` writes one file (``{'state_dict', 'optimizer', 'meta', ...}``);
a run under ``FlexibleRunner`` + ``DeepSpeedStrategy`` writes a directory named like that file
(``iter_60000.pth/``) holding DeepSpeed's per-rank files, whose fp32 master weights are
partitioned over the ranks' optimizer states. The next stage (``model.init_cfg`` of type
``Pretrained``, or a head's own checkpoint argument) and ``tools/test.py`` read one plain file:
:func:`consolidate_checkpoint` writes it.
"""
import os.path as osp
from typing import Dict

import torch
from torch import Tensor


def load_model_weights(path: str) -> Dict[str, Tensor]:
    """The model's state dict in a checkpoint (fp32 master weights for a ZeRO checkpoint).

    Args:
        path: an MMEngine checkpoint file, or a DeepSpeed checkpoint directory
            (``work_dirs/<config>/iter_<N>.pth/`` as ``DeepSpeedStrategy`` saves it).

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    if osp.isdir(path):
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
        return dict(get_fp32_state_dict_from_zero_checkpoint(
            osp.dirname(osp.abspath(path)), tag=osp.basename(osp.normpath(path))))
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path!r} does not exist')
    checkpoint = torch.load(path, map_location='cpu', weights_only=False)
    return checkpoint.get('state_dict', checkpoint)


def consolidate_checkpoint(src: str, dst: str) -> int:
    """Write the model weights of ``src`` (file or DeepSpeed directory) to the plain MMEngine
    checkpoint file ``dst`` (``{'state_dict': ..., 'meta': {'source': src}}``).

    Returns:
        the number of tensors written.
    """
    state_dict = load_model_weights(src)
    torch.save(dict(state_dict=state_dict, meta=dict(source=osp.abspath(src))), dst)
    return len(state_dict)
