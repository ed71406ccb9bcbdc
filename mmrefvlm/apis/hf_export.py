"""Export a trained REF-VLM to a directory in HF formats, and read it back.

Layout of an exported directory::

    OUT_DIR/
      config.py            the model's config; LM and tokenizer paths point into OUT_DIR
      dataset_meta.json    class names, keypoint names and skeleton of the training set
      llm/                 the causal LM (``save_pretrained``: config.json, model.safetensors)
      tokenizer/           the tokenizer with the TRP special tokens (``save_pretrained``)
      vision_tower.safetensors, projector.safetensors, router.safetensors,
      head_<unit>.safetensors    every other part (prompt_encoder.safetensors too when the
                                 visual-prompt aggregation has parameters; the paper's has none)

``llm/`` loads with ``AutoModelForCausalLM.from_pretrained``; the other parts load into the
model built from ``config.py`` (:func:`load_exported`). Paths in ``config.py`` are relative to
the directory, so it can be moved.
"""
import json
import os
import os.path as osp
from collections import defaultdict
from typing import Any, Dict

import torch
from mmengine.config import Config
from safetensors.torch import load_file, save_file
from torch import nn

from mmrefvlm.tokenization.tokenizer import TOKENIZER_TYPES

LM_DIR = 'llm'
TOKENIZER_DIR = 'tokenizer'
CONFIG_FILE = 'config.py'
META_FILE = 'dataset_meta.json'
# the first key components of a parameter → the file that stores it
PART_FILES = {'backbone': 'vision_tower', 'neck.projector': 'projector',
              'neck.aggregation': 'prompt_encoder', 'router': 'router', 'heads': 'head'}
LM_PREFIX = 'neck.lm.'


def is_exported_dir(path: Any) -> bool:
    """Whether ``path`` is a directory written by :func:`export_hf`."""
    return isinstance(path, str) and osp.isfile(osp.join(path, CONFIG_FILE)) and \
        osp.isdir(osp.join(path, LM_DIR))


def part_file(key: str) -> str:
    """The safetensors file name (without extension) that holds parameter ``key``.

    Raises:
        ValueError: the key belongs to no known part (a new top-level module needs a file).
    """
    for prefix, name in PART_FILES.items():
        if key.startswith(prefix + '.'):
            if prefix == 'heads':
                return f'{name}_{key.split(".")[1]}'
            return name
    raise ValueError(f'export_hf: parameter {key!r} belongs to no exported part; known parts: '
                     f'{", ".join(PART_FILES)}')


def export_hf(model: nn.Module, cfg: Config, out_dir: str,
              dataset_meta: Dict[str, Any]) -> Dict[str, int]:
    """Write ``model`` (a :class:`~mmrefvlm.models.REFVLM` with its weights loaded) to ``out_dir``.

    A LoRA-wrapped LM is merged into its base weights first, and the exported config has no
    ``lora`` entry.

    Args:
        model: the model; its LM is saved with ``save_pretrained``.
        cfg: the config the model was built from.
        out_dir: the directory to write (created; existing files are overwritten).
        dataset_meta: written to ``dataset_meta.json``.

    Returns:
        ``{file name: number of tensors}`` of the safetensors files written.
    """
    os.makedirs(out_dir, exist_ok=True)
    neck = model.neck
    lm = neck.lm.merge_and_unload() if hasattr(neck.lm, 'merge_and_unload') else neck.lm
    lm.save_pretrained(osp.join(out_dir, LM_DIR), safe_serialization=True)
    neck.tokenizer.save_pretrained(osp.join(out_dir, TOKENIZER_DIR))
    parts: Dict[str, Dict[str, torch.Tensor]] = defaultdict(dict)
    for key, value in model.state_dict().items():
        if not key.startswith(LM_PREFIX):
            # clone: safetensors refuses tensors that share storage
            parts[part_file(key)][key] = value.detach().cpu().contiguous().clone()
    for name, tensors in parts.items():
        save_file(tensors, osp.join(out_dir, f'{name}.safetensors'))
    exported = _exported_config(cfg)
    exported.dump(osp.join(out_dir, CONFIG_FILE))
    with open(osp.join(out_dir, META_FILE), 'w', encoding='utf-8') as file:
        json.dump(dataset_meta, file, indent=1, default=str)
    return {f'{name}.safetensors': len(tensors) for name, tensors in parts.items()}


def _exported_config(cfg: Config) -> Config:
    """``cfg`` with the LM read from ``llm/`` and every tokenizer from ``tokenizer/``."""
    exported = Config(_relocate(cfg.to_dict(), ''))
    neck = exported.model.neck
    neck.lm = dict(type='pretrained', path=LM_DIR)
    neck.pop('lora', None)
    exported.load_from = None
    return exported


def _relocate(node: Any, root: str) -> Any:
    """Copy of a config tree whose tokenizer entries read ``root/tokenizer`` and whose LM entry
    (``neck.lm`` of type ``pretrained``) reads ``root/llm``."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == 'tokenizer' and isinstance(value, dict) and \
                    value.get('type') in TOKENIZER_TYPES:
                value = dict(type='pretrained', path=osp.join(root, TOKENIZER_DIR))
            elif key == 'lm' and isinstance(value, dict) and value.get('path') == LM_DIR:
                value = dict(value, path=osp.join(root, LM_DIR))
            out[key] = _relocate(value, root)
        return out
    if isinstance(node, (list, tuple)):
        return type(node)(_relocate(value, root) for value in node)
    return node


def load_exported_config(out_dir: str) -> Config:
    """The config of an exported directory, with its LM and tokenizer paths made absolute."""
    cfg = Config.fromfile(osp.join(out_dir, CONFIG_FILE))
    return Config(_relocate(cfg.to_dict(), osp.abspath(out_dir)))


def load_exported(model: nn.Module, out_dir: str) -> Dict[str, Any]:
    """Load the non-LM parts of ``out_dir`` into ``model`` (built from its config).

    Returns:
        The directory's dataset meta.

    Raises:
        ValueError: a parameter of the model is missing from the files, or a file holds a
            parameter the model does not have.
    """
    state: Dict[str, torch.Tensor] = {}
    for name in sorted(os.listdir(out_dir)):
        if name.endswith('.safetensors'):
            state.update(load_file(osp.join(out_dir, name)))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [key for key in missing if not key.startswith(LM_PREFIX)]
    if missing or unexpected:
        raise ValueError(f'{out_dir}: the exported parts do not match the model of its '
                         f'config.py: missing {missing[:5]}, unexpected {unexpected[:5]}')
    meta_file = osp.join(out_dir, META_FILE)
    if not osp.isfile(meta_file):
        return {}
    with open(meta_file, encoding='utf-8') as file:
        return json.load(file)

