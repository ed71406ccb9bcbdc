"""Work-arounds for incompatibilities inside the pinned stack, kept in our code (never in
site-packages).

* deepspeed 0.19.6 imports transformers' OPT model from ``deepspeed.runtime.hybrid_engine``;
  transformers' ``modeling_utils`` imports deepspeed when it is installed. A process that imports
  transformers' model code first dies in that cycle. Importing deepspeed first breaks the cycle,
  so :func:`preload_deepspeed` runs before anything of ours touches transformers.
* torch >= 2.6 loads checkpoints with ``weights_only=True``; MMEngine's checkpoints carry a few
  plain Python/numpy objects (``HistoryBuffer``, numpy scalars and dtypes).
  :func:`allow_mmengine_checkpoint_globals` allow-lists exactly those instead of turning the
  safety off.
"""
import codecs
import importlib.util
import os
import sys


def preload_deepspeed() -> None:
    """Import deepspeed (when installed) before transformers' model code.

    Without a GPU, deepspeed's accelerator is fixed to the CPU (``DS_ACCELERATOR``, unless the
    user set it): its auto-detection prints a warning to stdout and probes compilers for
    ``libaio`` on every import.
    """
    if 'deepspeed' in sys.modules or importlib.util.find_spec('deepspeed') is None:
        return
    import torch
    if not torch.cuda.is_available():
        os.environ.setdefault('DS_ACCELERATOR', 'cpu')
    import deepspeed  # noqa: F401


def allow_mmengine_checkpoint_globals() -> None:
    """Allow-list the globals that MMEngine writes into checkpoints for ``torch.load``."""
    import numpy as np
    import torch
    from mmengine.logging import HistoryBuffer

    if not hasattr(torch.serialization, 'add_safe_globals'):
        return
    dtypes = [type(np.dtype(name)) for name in ('float64', 'float32', 'int64', 'int32', 'bool')]
    # `getattr`: a HistoryBuffer pickles its statistics as bound methods, getattr(buffer, 'min');
    # the weights-only unpickler still refuses to call anything that is not allow-listed.
    # `codecs.encode`: how numpy scalars pickle their raw bytes.
    torch.serialization.add_safe_globals([
        HistoryBuffer, np.dtype, np.ndarray, np.core.multiarray._reconstruct,
        np.core.multiarray.scalar, getattr, codecs.encode, *dtypes
    ])
