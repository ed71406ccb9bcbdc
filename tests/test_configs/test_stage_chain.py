"""The paper's recipe as a chain: stage 1 trains and writes ``final_weights.pth``, stage 2 starts
from it, stage 3 from stage 2's (shrunk configs, MMEngine's Runner on the CPU). Each stage reports
which of its keys the previous stage's file filled and which it left to their own
initialisation."""
import glob
import os.path as osp

import torch
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from mmrefvlm.registry import MODELS

from test_paper_configs import shrunk  # noqa: E402  (tests/test_configs is on sys.path)


def _train(stage: str, data_root: str, work_dir: str, previous: str = None) -> Runner:
    cfg = shrunk(stage, data_root)
    cfg.work_dir = work_dir
    cfg.strategy = None  # DeepSpeed needs a GPU here; the chain is the same files under DDP
    cfg.optim_wrapper = dict(type='OptimWrapper',
                             optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.0))
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=10)
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    cfg.train_dataloader.update(batch_size=2, num_workers=0, persistent_workers=False)
    cfg.default_hooks.checkpoint.interval = 2
    cfg.default_hooks.visualization = dict(type='DetVisualizationHook', draw=False)
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    cfg.experiment_name = stage
    if previous is not None:
        # the stage config names work_dirs/refvlm_<previous>/final_weights.pth
        assert cfg.model.init_cfg.checkpoint.endswith('final_weights.pth')
        cfg.model.init_cfg.checkpoint = previous
        if 'keypoint' in cfg.model.heads:
            cfg.model.heads.keypoint.box_head_checkpoint = previous
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def _key_report(work_dir: str) -> str:
    """The key mismatch MMEngine logged when the previous stage's file did not fill the model
    exactly (``missing keys`` / ``unexpected key`` lines of the run's log)."""
    log, = glob.glob(osp.join(work_dir, '*', '*.log'))
    with open(log) as f:
        return ''.join(line for line in f
                       if line.startswith(('missing keys', 'unexpected key')))


def test_stage1_to_stage2_to_stage3(tiny_data, tmp_path):
    weights = {}
    reports = {}
    previous = None
    for stage in ('stage1', 'stage2', 'stage3'):
        work_dir = str(tmp_path / stage)
        runner = _train(stage, tiny_data, work_dir, previous)
        previous = osp.join(work_dir, 'final_weights.pth')
        assert osp.isfile(previous), f'{stage} wrote no final_weights.pth'
        weights[stage] = torch.load(previous, map_location='cpu')['state_dict']
        reports[stage] = _key_report(work_dir)
        assert weights[stage].keys() == runner.model.state_dict().keys()
    # stage 2 loaded every stage-1 tensor it has (LM, projector); the heads and the dense
    # tower were new (missing), stage 1's ViT-only backbone keys differ from the dual tower's
    missing2 = reports['stage2'].split('missing keys in source state_dict:')[-1]
    assert 'heads.box.' in missing2 and 'heads.mask.' in missing2
    assert 'neck.lm.' not in missing2 and 'neck.projector.' not in missing2
    # stage 3: only the keypoint head is missing from stage 2's file
    missing3 = reports['stage3'].split('missing keys in source state_dict:')[-1]
    assert 'heads.keypoint.' in missing3
    assert 'heads.box.' not in missing3 and 'neck.lm.' not in missing3
    # the values, not only the names: a fresh stage-2 model starts from stage 1's LM and
    # projector
    cfg = shrunk('stage2', tiny_data)
    cfg.model.init_cfg.checkpoint = osp.join(str(tmp_path / 'stage1'), 'final_weights.pth')
    init_default_scope('mmrefvlm')
    model = MODELS.build(cfg.model)
    model.init_weights()
    for key, value in model.state_dict().items():
        if key.startswith(('neck.lm.', 'neck.projector.')):
            torch.testing.assert_close(value, weights['stage1'][key], msg=key)
    # stage 3 trained neither the box nor the mask decoder: they are stage 2's
    for key, value in weights['stage3'].items():
        if key.startswith(('heads.box.', 'heads.mask.')):
            torch.testing.assert_close(value, weights['stage2'][key], msg=key)
    # ... but it trained the LM, starting from stage 2's
    lm_keys = [k for k in weights['stage3'] if k.startswith('neck.lm.') and 'embed' not in k]
    assert any(not torch.equal(weights['stage3'][k], weights['stage2'][k]) for k in lm_keys)
    for stage in ('stage2', 'stage3'):
        print(f'--- {stage}: keys its init_cfg checkpoint did not fill ---')
        for line in reports[stage].splitlines():
            keys = line.split(': ', 1)[1].split(', ')
            groups = sorted({'.'.join(key.split('.')[:2]) for key in keys})
            print(f"{line.split(':')[0]}: {len(keys)} keys under {', '.join(groups)}")
