from .refvlm import REFVLM
from .trivial_baseline import TrivialBaseline

__all__ = ['REFVLM', 'TrivialBaseline']
