"""Shared start-up of ``tools/train.py`` and ``tools/test.py``: config loading, ``--cfg-options``,
and the launcher set-up that MMEngine does not do for CPU multi-process runs.

MMEngine's ``init_dist('pytorch')`` calls ``torch.cuda.set_device``; on a machine without a GPU the
process group is initialised here (gloo) before the runner is built, and the DDP wrapper gets
``device_ids=None``. Users' configs stay device-agnostic.
"""
import argparse
import os
import os.path as osp

import torch
import torch.distributed as dist
from mmengine.config import Config


def load_config(args: argparse.Namespace) -> Config:
    """Read the config, apply ``--cfg-options``, ``--work-dir`` and the launcher."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    import mmrefvlm  # noqa: F401  (deepspeed before transformers; registers every module)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.launcher != 'none' and not torch.cuda.is_available():
        _init_cpu_process_group(cfg)
    return cfg


def _init_cpu_process_group(cfg: Config) -> None:
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    cfg.setdefault('env_cfg', {})
    cfg.env_cfg.setdefault('dist_cfg', {})
    cfg.env_cfg.dist_cfg['backend'] = 'gloo'
    wrapper = dict(cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel'))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper


def build_runner(cfg: Config):
    """``FlexibleRunner`` when the config names a ``strategy`` (DeepSpeed/FSDP), else ``Runner``."""
    if cfg.get('strategy') is not None:
        from mmengine.runner import FlexibleRunner
        return FlexibleRunner.from_cfg(cfg)
    from mmengine.runner import Runner
    return Runner.from_cfg(cfg)
