"""Registries of mmrefvlm: children of MMDetection's, so every MMDet and MMEngine module stays
reachable from configs whose ``default_scope`` is ``'mmrefvlm'``."""
from mmdet import registry as mmdet
from mmengine.registry import Registry


def _child(name: str, parent: Registry, locations=()) -> Registry:
    return Registry(name, parent=parent, scope='mmrefvlm', locations=list(locations))


# what mmrefvlm registers
MODELS = _child('model', mmdet.MODELS, ['mmrefvlm.models'])
TASK_UTILS = _child('task util', mmdet.TASK_UTILS, ['mmrefvlm.models'])
DATASETS = _child('dataset', mmdet.DATASETS, ['mmrefvlm.datasets'])
DATA_SAMPLERS = _child('data sampler', mmdet.DATA_SAMPLERS, ['mmrefvlm.datasets'])
TRANSFORMS = _child('transform', mmdet.TRANSFORMS, ['mmrefvlm.datasets'])
METRICS = _child('metric', mmdet.METRICS, ['mmrefvlm.evaluation'])
HOOKS = _child('hook', mmdet.HOOKS, ['mmrefvlm.engine'])
VISUALIZERS = _child('visualizer', mmdet.VISUALIZERS, ['mmrefvlm.visualization'])
# the runner's own registries, so the runner finds them in the mmrefvlm scope
RUNNERS = _child('runner', mmdet.RUNNERS)
RUNNER_CONSTRUCTORS = _child('runner constructor', mmdet.RUNNER_CONSTRUCTORS)
LOOPS = _child('loop', mmdet.LOOPS)
MODEL_WRAPPERS = _child('model_wrapper', mmdet.MODEL_WRAPPERS)
WEIGHT_INITIALIZERS = _child('weight initializer', mmdet.WEIGHT_INITIALIZERS)
OPTIMIZERS = _child('optimizer', mmdet.OPTIMIZERS)
OPTIM_WRAPPERS = _child('optim_wrapper', mmdet.OPTIM_WRAPPERS)
OPTIM_WRAPPER_CONSTRUCTORS = _child('optimizer wrapper constructor',
                                    mmdet.OPTIM_WRAPPER_CONSTRUCTORS)
PARAM_SCHEDULERS = _child('parameter scheduler', mmdet.PARAM_SCHEDULERS)
EVALUATOR = _child('evaluator', mmdet.EVALUATOR)
VISBACKENDS = _child('vis_backend', mmdet.VISBACKENDS)
LOG_PROCESSORS = _child('log_processor', mmdet.LOG_PROCESSORS)
