"""Loading the causal language model of the LLM neck.

Three sources, all offline:

* ``dict(type='pretrained', path=DIR)`` — any HF causal-LM directory (Vicuna-7B for the paper);
* ``dict(type='gguf', path=FILE)`` — a GGUF file, dequantised by transformers (``gguf_file=``) on
  first use and cached as safetensors under ``cache_dir`` (default ``~/.cache/mmrefvlm/gguf``), so
  later runs load in seconds;
* ``dict(type='config', config=dict(model_type='llama', ...))`` — random initialisation from a
  config dict (the offline tiny config).
"""
import hashlib
import os
import os.path as osp
from typing import Optional

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel

from mmrefvlm.utils.compat import preload_deepspeed

_DTYPES = {'float32': torch.float32, 'bfloat16': torch.bfloat16, 'float16': torch.float16}


def _dtype(name: Optional[str]) -> Optional[torch.dtype]:
    if name is None:
        return None
    if name not in _DTYPES:
        raise ValueError(f'lm.torch_dtype: {name!r} is not one of {sorted(_DTYPES)}')
    return _DTYPES[name]


def _gguf_cache_dir(path: str, cache_dir: Optional[str]) -> str:
    root = cache_dir or osp.join(
        os.environ.get('XDG_CACHE_HOME', osp.expanduser('~/.cache')), 'mmrefvlm', 'gguf')
    stat = os.stat(path)
    key = hashlib.sha1(f'{osp.abspath(path)}:{stat.st_size}:{stat.st_mtime_ns}'.encode())
    return osp.join(root, f'{osp.splitext(osp.basename(path))[0]}-{key.hexdigest()[:10]}')


def build_causal_lm(cfg: dict) -> PreTrainedModel:
    """Build the HF causal LM described by ``cfg`` (see the module docstring)."""
    preload_deepspeed()
    cfg = dict(cfg)
    kind = cfg.pop('type', None)
    dtype = _dtype(cfg.pop('torch_dtype', None))
    if kind == 'config':
        config = dict(cfg.pop('config'))
        model_type = config.pop('model_type')
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, **config))
        return model.to(dtype) if dtype is not None else model
    path = cfg.pop('path', None)
    if kind not in ('pretrained', 'gguf'):
        raise ValueError(f"lm.type must be 'pretrained', 'gguf' or 'config', got {kind!r}")
    if not path or not osp.exists(path):
        raise FileNotFoundError(
            f'lm.path: {path!r} does not exist; give a local {kind} path (no model hub is used)')
    if kind == 'pretrained':
        return AutoModelForCausalLM.from_pretrained(
            path, local_files_only=True, torch_dtype=dtype, **cfg)
    cache = _gguf_cache_dir(path, cfg.pop('cache_dir', None))
    if not osp.exists(osp.join(cache, 'config.json')):
        model = AutoModelForCausalLM.from_pretrained(
            osp.dirname(path), gguf_file=osp.basename(path), local_files_only=True)
        model.save_pretrained(cache, safe_serialization=True)
    return AutoModelForCausalLM.from_pretrained(
        cache, local_files_only=True, torch_dtype=dtype, **cfg)
