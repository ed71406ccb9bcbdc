from .loops import REFVLMTestLoop

__all__ = ['REFVLMTestLoop']
