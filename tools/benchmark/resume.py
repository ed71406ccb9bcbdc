"""Benchmark: time from ``runner.train()`` to the first training step of a resumed run, at an
early and at a late iteration, for MMEngine's ``IterBasedTrainLoop`` (draws and drops the k
batches already trained on) and ``REFVLMTrainLoop`` (restores the sampler's position).

The tiny config (the main job: its model, pipeline, batch 8, one loader worker) on a freshly
generated set. The checkpoint at iteration k is a one-iteration checkpoint whose iteration and
data-stream position are set to k: the weights do not change what a resume costs.

    python tools/benchmark/resume.py [--iters 10 880 60000] [--replay-iters 10 880]
"""
import argparse
import importlib.util
import os.path as osp
import tempfile
import time

import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmrefvlm.datasets.synthetic import generate
from mmrefvlm.engine.runner.train_loop import SAMPLER_STATE
from mmrefvlm.utils.config_refs import read_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(REPO, 'configs', 'refvlm', 'refvlm_tinyllama_tinyconv_stage2_synthetic.py')


class FirstStepTimer(Hook):
    """Records when the first training iteration starts (after the resume)."""

    def __init__(self) -> None:
        self.first_step = None

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if self.first_step is None:
            self.first_step = time.perf_counter()


def prepare(root: str):
    """Generate the data and its tokenizer; train one iteration; return the config and the
    checkpoint."""
    generate(root, num_train=400, num_val=8, seed=0)
    spec = importlib.util.spec_from_file_location(
        'build_tokenizer', osp.join(REPO, 'tools', 'misc', 'build_tokenizer.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.build(root, vocab_size=512)
    cfg = read_config(TINY, dict(data_root=root, max_iters=1))
    cfg.work_dir = osp.join(root, 'first')
    # a constant learning rate: the schedule does not change what a resume costs
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
    cfg.default_hooks.checkpoint.update(interval=1, save_last=True)
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    Runner.from_cfg(cfg.copy()).train()
    return cfg, osp.join(cfg.work_dir, 'iter_1.pth')


def checkpoint_at(src: str, iteration: int, global_batch: int, dst: str) -> str:
    """``src`` with its iteration and data-stream position set to ``iteration``."""
    checkpoint = torch.load(src, map_location='cpu', weights_only=False)
    checkpoint['meta']['iter'] = iteration
    info = checkpoint['message_hub']['runtime_info']
    info[SAMPLER_STATE] = dict(info[SAMPLER_STATE], consumed=iteration * global_batch)
    torch.save(checkpoint, dst)
    return dst


def time_to_first_step(cfg, checkpoint: str, iteration: int, loop: str, work_dir: str) -> float:
    """Seconds from ``train()`` to the first step of a run resumed from ``checkpoint``."""
    run = cfg.copy()
    run.work_dir = work_dir
    run.train_cfg.update(type=loop, max_iters=iteration + 1)
    run.default_hooks.checkpoint.update(interval=10**9, save_last=False)
    run.load_from, run.resume = checkpoint, True
    runner = Runner.from_cfg(run)
    timer = FirstStepTimer()
    runner.register_hook(timer)
    start = time.perf_counter()
    runner.train()
    return timer.first_step - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--iters', type=int, nargs='+', default=[10, 880, 60000],
                        help='resume iterations for REFVLMTrainLoop')
    parser.add_argument('--replay-iters', type=int, nargs='+', default=[10, 880],
                        help="resume iterations for MMEngine's IterBasedTrainLoop")
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as root:
        cfg, first = prepare(root)
        global_batch = cfg.train_dataloader.batch_size
        rows = []
        for loop, iters in (('REFVLMTrainLoop', args.iters),
                            ('IterBasedTrainLoop', args.replay_iters)):
            for k in iters:
                ckpt = checkpoint_at(first, k, global_batch, osp.join(root, f'iter_{k}.pth'))
                seconds = time_to_first_step(cfg, ckpt, k, loop, osp.join(root, f'{loop}_{k}'))
                rows.append((loop, k, seconds))
        print('| loop | resumed at iteration | time to first step |\n|---|---|---|')
        for loop, k, seconds in rows:
            print(f'| {loop} | {k} | {seconds:.1f} s |')


if __name__ == '__main__':
    main()
