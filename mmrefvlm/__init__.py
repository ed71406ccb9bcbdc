"""mmrefvlm: REF-VLM as an MMDetection 3.x plugin.

Importing the package registers every module in the ``mmrefvlm`` child registries (configs reach
them through ``custom_imports = dict(imports=['mmrefvlm'])`` and ``default_scope='mmrefvlm'``).
"""
from .utils.compat import allow_mmengine_checkpoint_globals, preload_deepspeed

preload_deepspeed()
allow_mmengine_checkpoint_globals()

from mmdet.utils import register_all_modules as _register_mmdet  # noqa: E402

# MMDet's own modules (DetLocalVisualizer, CocoMetric, transforms...) must be registered
# for configs in the mmrefvlm scope to reach them through the parent registries
_register_mmdet(init_default_scope=False)

from . import datasets, engine, evaluation, models, trp, visualization  # noqa: E402,F401
from .version import __version__  # noqa: E402

__all__ = ['__version__']
