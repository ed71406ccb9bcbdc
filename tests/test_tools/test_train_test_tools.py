"""tools/train.py, --resume, tools/test.py and CPU multi-process training on the tiny config."""
import importlib.util
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _tool(name):
    sys.path.insert(0, osp.join(REPO, 'tools'))
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dump(cfg, path, max_iters):
    cfg.train_cfg.max_iters = max_iters
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = max_iters
    cfg.train_dataloader.batch_size = 2
    cfg.test_dataloader.batch_size = 8
    cfg.test_dataloader.dataset.max_records = 8
    cfg.test_dataloader.dataset.tasks = ['rec', 'res']
    cfg.test_cfg = dict(type='REFVLMTestLoop')
    cfg.dump(str(path))
    return str(path)


def _losses(log_text):
    return [float(v) for v in re.findall(r'Iter\(train\) \[\s*\d+/\d+\].*?\sloss: ([0-9.]+)',
                                         log_text)]


def test_train_resume_and_test(tiny_cfg, tmp_path, capsys):
    config = _dump(tiny_cfg, tmp_path / 'tiny.py', max_iters=2)
    work_dir = str(tmp_path / 'work')
    # --resume where nothing was trained stops before anything is built
    with pytest.raises(SystemExit, match='no checkpoint to resume in .*empty'):
        _tool('train').main([config, '--work-dir', str(tmp_path / 'empty'), '--resume'])
    _tool('train').main([config, '--work-dir', work_dir])
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))
    # resume (torch's weights_only loading of MMEngine's checkpoint) and train one more step
    _tool('train').main([config, '--work-dir', work_dir, '--resume',
                         '--cfg-options', 'train_cfg.max_iters=3',
                         'default_hooks.checkpoint.interval=1'])
    assert osp.isfile(osp.join(work_dir, 'iter_3.pth'))
    show_dir = str(tmp_path / 'vis')
    _tool('test').main([config, osp.join(work_dir, 'iter_3.pth'), '--work-dir', work_dir,
                        '--show-dir', show_dir, '--show-num', '3', '--with-baseline'])
    assert len(os.listdir(show_dir)) == 3
    captured = capsys.readouterr()
    assert re.search(r'rec/acc@0\.5: [0-9.]+', captured.out + captured.err)
    assert re.search(r'test: 100%.*8/8 .*sample/s', captured.err)  # REFVLMTestLoop's bar
    assert re.search(r'skipped_samples\s+0\s+0', captured.out)  # model and baseline
    # the work dir's config stays the trained model's; the baseline has its own directory
    assert Config.fromfile(osp.join(work_dir, 'tiny.py')).model.type == 'REFVLM'
    assert Config.fromfile(osp.join(work_dir, 'baseline', 'tiny.py')).model.type == \
        'TrivialBaseline'
    assert not osp.exists(osp.join(work_dir, 'baseline', 'iter_3.pth'))


@pytest.mark.slow
def test_two_cpu_processes_match_one_at_step_one(tiny_cfg, tmp_path):
    # one record: every rank (and the single process) trains on the same sample
    tiny_cfg.train_dataloader.dataset.max_records = 1
    tiny_cfg.train_dataloader.dataset.tasks = ['rec']
    config = _dump(tiny_cfg, tmp_path / 'tiny.py', max_iters=2)
    env = dict(os.environ, OMP_NUM_THREADS='1', PORT='29731', PYTHON=sys.executable)
    single = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'train.py'), config, '--work-dir',
         str(tmp_path / 'single')], capture_output=True, text=True, env=env, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    dist = subprocess.run(
        ['bash', osp.join(REPO, 'tools', 'dist_train.sh'), config, '2', '--work-dir',
         str(tmp_path / 'dist')], capture_output=True, text=True, env=env, timeout=600)
    assert dist.returncode == 0, dist.stderr[-3000:]
    one = _losses(single.stdout + single.stderr)
    two = _losses(dist.stdout + dist.stderr)
    assert len(one) == 2 and len(two) >= 2
    assert two[0] == pytest.approx(one[0], rel=1e-4)
