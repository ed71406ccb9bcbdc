"""The one command under the paper's strategy: ``tools/dist_train.sh`` on the shrunk stage-2
config runs MMEngine's FlexibleRunner + DeepSpeed ZeRO-2 (bf16) on the CPU (gloo), writes a
DeepSpeed checkpoint directory, and FinalWeightsHook / consolidate_checkpoint.py turn it into one
fp32 weights file."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from mmrefvlm.engine.checkpoint import consolidate_checkpoint

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'tests', 'test_configs'))
from test_paper_configs import shrunk  # noqa: E402


@pytest.mark.slow
def test_dist_train_under_zero2_writes_consolidated_weights(tiny_data, tmp_path):
    cfg = shrunk('stage2', tiny_data)
    cfg.model.init_cfg = None  # no stage-1 weights here
    cfg.strategy.train_micro_batch_size_per_gpu = 2
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=10)
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    cfg.train_dataloader.update(batch_size=2, num_workers=0, persistent_workers=False)
    cfg.default_hooks.checkpoint.interval = 2
    cfg.default_hooks.visualization = dict(type='DetVisualizationHook', draw=False)
    config = str(tmp_path / 'stage2_zero2.py')
    cfg.dump(config)
    work_dir = str(tmp_path / 'work')
    env = dict(os.environ, OMP_NUM_THREADS='1', PORT='29741', PYTHON=sys.executable)
    run = subprocess.run(['bash', osp.join(REPO, 'tools', 'dist_train.sh'), config, '1',
                          '--work-dir', work_dir], capture_output=True, text=True, env=env,
                         timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth', 'mp_rank_00_model_states.pt'))
    weights = torch.load(osp.join(work_dir, 'final_weights.pth'), map_location='cpu')
    state = weights['state_dict']
    assert any(k.startswith('heads.box.') for k in state) and any(
        k.startswith('neck.lm.') for k in state)
    # the trained parts come from the fp32 master weights (frozen towers stay as DeepSpeed
    # holds them, in bf16)
    trained = [k for k in state if k.startswith(('neck.', 'heads.'))]
    assert trained and all(state[k].dtype == torch.float32 for k in trained)
    # the command users run on checkpoints in between gives the same tensors
    again = str(tmp_path / 'iter_2_weights.pth')
    assert consolidate_checkpoint(osp.join(work_dir, 'iter_2.pth'), again) == len(state)
    for key, value in torch.load(again, map_location='cpu')['state_dict'].items():
        torch.testing.assert_close(value, state[key], msg=key)
