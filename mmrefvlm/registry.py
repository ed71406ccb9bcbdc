"""Registries of mmrefvlm: children of MMDetection's, so every MMDet module stays reachable
from configs whose ``default_scope`` is ``'mmrefvlm'``."""
from mmdet.registry import DATA_SAMPLERS as MMDET_DATA_SAMPLERS
from mmdet.registry import DATASETS as MMDET_DATASETS
from mmdet.registry import HOOKS as MMDET_HOOKS
from mmdet.registry import METRICS as MMDET_METRICS
from mmdet.registry import MODELS as MMDET_MODELS
from mmdet.registry import TASK_UTILS as MMDET_TASK_UTILS
from mmdet.registry import TRANSFORMS as MMDET_TRANSFORMS
from mmdet.registry import VISUALIZERS as MMDET_VISUALIZERS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMDET_MODELS, scope='mmrefvlm', locations=['mmrefvlm.models'])
TASK_UTILS = Registry(
    'task util', parent=MMDET_TASK_UTILS, scope='mmrefvlm', locations=['mmrefvlm.models'])
DATASETS = Registry(
    'dataset', parent=MMDET_DATASETS, scope='mmrefvlm', locations=['mmrefvlm.datasets'])
DATA_SAMPLERS = Registry(
    'data sampler', parent=MMDET_DATA_SAMPLERS, scope='mmrefvlm',
    locations=['mmrefvlm.datasets'])
TRANSFORMS = Registry(
    'transform', parent=MMDET_TRANSFORMS, scope='mmrefvlm', locations=['mmrefvlm.datasets'])
METRICS = Registry(
    'metric', parent=MMDET_METRICS, scope='mmrefvlm', locations=['mmrefvlm.evaluation'])
HOOKS = Registry('hook', parent=MMDET_HOOKS, scope='mmrefvlm', locations=['mmrefvlm.engine'])
VISUALIZERS = Registry(
    'visualizer', parent=MMDET_VISUALIZERS, scope='mmrefvlm',
    locations=['mmrefvlm.visualization'])
