from .trivial_baseline import TrivialBaseline

__all__ = ['TrivialBaseline']
