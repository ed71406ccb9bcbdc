from . import (backbones, baselines, data_preprocessors, detectors, heads, language, losses,
               necks, routers, task_modules)  # noqa: F401
