"""tools/analysis_tools/estimate_memory.py: the paper's stage 2 fits 8 x 80 GB under ZeRO-2 and
not under DDP; its counts and model-state bytes agree with DeepSpeed's own functions."""
import importlib.util
import os.path as osp
import sys

import pytest
from deepspeed.runtime.zero import stage3
from deepspeed.runtime.zero.stage_1_and_2 import (estimate_zero2_model_states_mem_needs,
                                                  model_to_params)
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmrefvlm.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'tests', 'test_configs'))
from test_paper_configs import shrunk  # noqa: E402

GIB = 2**30


def _planner():
    spec = importlib.util.spec_from_file_location(
        'estimate_memory', osp.join(REPO, 'tools', 'analysis_tools', 'estimate_memory.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def stage2():
    """The paper-scale stage-2 config and its parts, built on the meta device."""
    init_default_scope('mmrefvlm')
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'refvlm_stage2.py'))
    return cfg, _planner().model_parts(cfg)


def test_stage2_fits_8x80gb_under_zero2_and_not_under_ddp(stage2):
    cfg, parts = stage2
    planner = _planner()
    by_name = {part.name: part for part in parts}
    # Vicuna-7B v1.5 (Llama-2-7B shape) trains in full, the CLIP towers are frozen
    assert by_name['neck.lm'].trainable == 6_738_415_616
    assert by_name['backbone'].trainable == 0 and by_name['backbone'].frozen > 4e8
    activations = planner.activation_bytes(4096, 32, 32000, 16 * 2048, checkpointing=True)
    zero2 = planner.model_state_bytes(parts, cfg.strategy, gpus=8, gpus_per_node=8)
    ddp = planner.model_state_bytes(parts, None, gpus=8, gpus_per_node=8)
    assert (zero2 + activations) / GIB < 80 < (ddp + activations) / GIB
    assert ddp / GIB > 80  # DDP's model states alone do not fit


def test_main_prints_the_table_and_the_verdict(capsys, monkeypatch, stage2):
    planner = _planner()
    monkeypatch.setattr(planner, 'model_parts', lambda cfg: stage2[1])
    config = osp.join(REPO, 'configs', 'refvlm_stage2.py')
    assert planner.main([config, '--gpus', '8', '--gpu-mem', '80'])
    out = capsys.readouterr().out
    assert 'neck.lm' in out and '6,738,415,616' in out and ': fits' in out
    assert not planner.main([config, '--gpus', '8', '--gpu-mem', '80',
                             '--cfg-options', 'strategy=None'])
    assert 'does NOT fit' in capsys.readouterr().out


def test_counts_and_bytes_match_deepspeeds_functions(tiny_data):
    """On a model small enough to build for real: the meta-device counts are DeepSpeed's
    ``model_to_params`` of the real modules, and the ZeRO-2/3 bytes its estimators'."""
    planner = _planner()
    cfg = shrunk('stage2', tiny_data)
    init_default_scope('mmrefvlm')
    model = MODELS.build(cfg.model)
    parts = {part.name: part for part in planner.model_parts(cfg)}
    for name in ('backbone', 'neck.projector', 'heads.box', 'heads.mask'):
        module = model.get_submodule(name)
        assert parts[name].trainable + parts[name].frozen == model_to_params(module), name
        assert parts[name].largest_layer == stage3.model_to_params(module)[1], name
    # every part trainable: the planner's ZeRO-2/3 bytes are DeepSpeed's estimates
    trainable = [planner.Part(p.name, p.trainable + p.frozen, 0, p.largest_layer)
                 for p in parts.values()]
    total = sum(p.trainable for p in trainable)
    largest = max(p.largest_layer for p in trainable)
    assert planner.model_state_bytes(trainable, dict(zero_optimization=dict(stage=2)), 16, 8) \
        == estimate_zero2_model_states_mem_needs(total, 8, 2, cpu_offload=False)[1]
    assert planner.model_state_bytes(trainable, dict(zero_optimization=dict(stage=3)), 16, 8) \
        == stage3.estimate_zero3_model_states_mem_needs(
            total, largest, 8, 2, cpu_offload=False, cpu_offload_params=False)[1]
