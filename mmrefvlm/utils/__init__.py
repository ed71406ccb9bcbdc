from .compat import allow_mmengine_checkpoint_globals, preload_deepspeed

__all__ = ['allow_mmengine_checkpoint_globals', 'preload_deepspeed']
