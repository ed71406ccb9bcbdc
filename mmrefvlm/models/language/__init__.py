from .generation import GenerationOutput, greedy_generate
from .lm import build_causal_lm
from .tokenizer import IGNORE_INDEX, build_tokenizer, find_shipped_gguf, train_tokenizer

__all__ = [
    'GenerationOutput', 'greedy_generate', 'build_causal_lm', 'IGNORE_INDEX', 'build_tokenizer',
    'find_shipped_gguf', 'train_tokenizer'
]
