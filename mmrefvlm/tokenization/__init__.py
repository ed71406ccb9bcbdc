"""The tokenizer that data and model share (their common vocabulary, below both)."""
from .tokenizer import (IGNORE_INDEX, build_tokenizer, clear_tokenizer_cache, find_shipped_gguf,
                        train_tokenizer)

__all__ = ['IGNORE_INDEX', 'build_tokenizer', 'clear_tokenizer_cache', 'find_shipped_gguf',
           'train_tokenizer']
