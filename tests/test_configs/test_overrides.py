"""Every documented user key (README: `data_root`, `llm_path`, `clip_vit_path`,
`clip_convnext_path`, `load_from`, `max_iters`) moves every consumer, whether it is set with
``--cfg-options`` or by a three-line child config (configs read through ``read_config``)."""
import importlib.util
import os.path as osp
from argparse import Namespace

import pytest
import torch
from mmengine.registry import init_default_scope

from mmrefvlm.registry import DATASETS, PARAM_SCHEDULERS
from mmrefvlm.utils.config_refs import read_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STAGE1 = osp.join(REPO, 'configs', 'refvlm_stage1.py')
STAGE2 = osp.join(REPO, 'configs', 'refvlm_stage2.py')
STAGE3 = osp.join(REPO, 'configs', 'refvlm_stage3.py')
GCG_BENCHMARK = osp.join(REPO, 'configs', 'refvlm', 'benchmarks',
                         'refvlm_vicuna7b_clipl-convnextl_stage2_flickr30k-test.py')
TINY = osp.join(REPO, 'configs', 'refvlm', 'refvlm_tinyllama_tinyconv_stage2_synthetic.py')
WAYS = ['cfg-options', 'child config']


def override(way: str, config: str, key: str, value, tmp_path):
    """``config`` with ``key=value`` set by ``--cfg-options`` or by a child config."""
    if way == 'cfg-options':
        return read_config(config, {key: value})
    child = tmp_path / 'my_config.py'
    child.write_text(f'_base_ = [{config!r}]\n{key} = {value!r}\n')
    return read_config(str(child))


def loaders(cfg):
    return [cfg[name] for name in ('train_dataloader', 'val_dataloader', 'test_dataloader')
            if cfg.get(name) is not None]


def tokenizer_paths(cfg) -> list:
    """The tokenizer path of the model, its data preprocessor and every dataset pipeline."""
    paths = [cfg.model.neck.tokenizer.path, cfg.model.data_preprocessor.tokenizer.path]
    for loader in loaders(cfg):
        datasets = loader.dataset.get('datasets', [loader.dataset])
        paths += [t.tokenizer.path for d in datasets for t in d.pipeline
                  if t.type == 'TokenizeConversation']
    return paths


@pytest.mark.parametrize('way', WAYS)
def test_data_root_moves_every_dataset(way, tmp_path):
    for config in (STAGE1, STAGE2, STAGE3, GCG_BENCHMARK):
        cfg = override(way, config, 'data_root', '/my/data/', tmp_path)
        assert [loader.dataset.data_root for loader in loaders(cfg)] == ['/my/data/'] * 3


@pytest.mark.parametrize('way', WAYS)
def test_data_root_moves_the_tiny_datasets_and_their_tokenizer(way, tiny_data, tmp_path):
    cfg = override(way, TINY, 'data_root', tiny_data, tmp_path)
    tokenizer = osp.join(tiny_data, 'tokenizer')
    assert [osp.normpath(p) for p in tokenizer_paths(cfg)] == [tokenizer] * 4
    init_default_scope('mmrefvlm')
    dataset = DATASETS.build(cfg.test_dataloader.dataset)  # reads the JSONL and the tokenizer
    assert dataset.ann_file == osp.join(tiny_data, 'val.jsonl') and len(dataset) > 0
    assert dataset[0]['inputs'].shape[-1] == 128


@pytest.mark.parametrize('way', WAYS)
def test_llm_path_moves_the_lm_and_every_tokenizer(way, tmp_path):
    for config in (STAGE1, STAGE2):
        cfg = override(way, config, 'llm_path', '/models/vicuna', tmp_path)
        assert cfg.model.neck.lm.path == '/models/vicuna'
        assert set(tokenizer_paths(cfg)) == {'/models/vicuna'}


@pytest.mark.parametrize('way', WAYS)
def test_clip_paths_move_the_towers_and_the_metrics_text_encoder(way, tmp_path):
    cfg = override(way, GCG_BENCHMARK, 'clip_vit_path', '/w/vit.bin', tmp_path)
    assert cfg.model.backbone.global_tower.pretrained == '/w/vit.bin'
    assert [m.text_encoder.path for m in cfg.test_evaluator] == ['/w/vit.bin']
    assert override(way, STAGE1, 'clip_vit_path', '/w/vit.bin',
                    tmp_path).model.backbone.pretrained == '/w/vit.bin'
    cfg = override(way, STAGE2, 'clip_convnext_path', '/w/convnext.bin', tmp_path)
    assert cfg.model.backbone.dense_tower.pretrained == '/w/convnext.bin'


@pytest.mark.parametrize('way', WAYS)
def test_load_from_reaches_the_runner(way, tmp_path):
    assert override(way, STAGE2, 'load_from', '/runs/iter_10.pth',
                    tmp_path).load_from == '/runs/iter_10.pth'


@pytest.mark.parametrize('way', WAYS)
def test_max_iters_moves_the_loop_and_the_schedule(way, tmp_path):
    cfg = override(way, STAGE2, 'max_iters', 1000, tmp_path)
    assert cfg.train_cfg.max_iters == 1000 and cfg.train_cfg.val_interval == 1000
    warmup, cosine = cfg.param_scheduler
    assert (warmup.end, cosine.begin, cosine.end) == (30, 30, 1000)  # warm-up ratio 0.03
    # the built schedulers, as the runner builds them
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    built = [PARAM_SCHEDULERS.build(dict(s, optimizer=optimizer)) for s in cfg.param_scheduler]
    assert [(s.begin, s.end) for s in built] == [(0, 30), (30, 1000)]
    # stage 3 sets its own max_iters; an override of it moves the inherited schedule too
    cfg = override(way, STAGE3, 'max_iters', 500, tmp_path)
    assert (cfg.train_cfg.max_iters, cfg.param_scheduler[1].end) == (500, 500)
    cfg = override(way, TINY, 'max_iters', 40, tmp_path)
    assert (cfg.train_cfg.max_iters, cfg.param_scheduler[1].end,
            cfg.default_hooks.checkpoint.interval) == (40, 40, 40)
    assert cfg.param_scheduler[0].end == 10  # the warm-up shrinks with a short run
    # a run of a few steps still has a warm-up shorter than itself, in every config
    for config in (STAGE2, STAGE3, TINY):
        cfg = override(way, config, 'max_iters', 2, tmp_path)
        built = [PARAM_SCHEDULERS.build(dict(s, optimizer=optimizer))
                 for s in cfg.param_scheduler]
        assert [(s.begin, s.end) for s in built] == [(0, 1), (1, 2)]


def test_tools_resolve_after_merging_cfg_options():
    spec = importlib.util.spec_from_file_location('launch', osp.join(REPO, 'tools', 'launch.py'))
    launch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch)
    args = Namespace(config=STAGE2, cfg_options={'llm_path': '/models/x', 'data_root': '/d/'},
                     launcher='none', work_dir=None, local_rank=0)
    cfg = launch.load_config(args)
    assert cfg.model.neck.lm.path == '/models/x'
    assert cfg.train_dataloader.dataset.data_root == '/d/'
    assert '${' not in cfg.pretty_text  # the work dir's copy is the resolved config
