from .generation import GenerationOutput, greedy_generate
from .lm import build_causal_lm

__all__ = ['GenerationOutput', 'greedy_generate', 'build_causal_lm']
