from .refvlm import REFVLM

__all__ = ['REFVLM']
