"""Benchmark: where a training step of the main job's model goes (CPU or GPU).

Builds the tiny config's model (the main job, ``configs/refvlm/refvlm_tinyllama_tinyconv_stage2_
synthetic.py``) on a freshly generated set and times, over ``--steps`` steps after a warm-up:
data (loader + data preprocessor), the vision tower, the LLM neck (embedding and LM), the router,
each head's loss (its matcher timed apart), the backward pass and the optimizer step. Forward
parts are timed by wrapping the modules' methods, so they add up to the forward pass.

    python tools/benchmark/train_step.py [--steps 20] [--device cuda] [--threads 2]
"""
import argparse
import functools
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Callable, Dict

import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from torch.utils.data import DataLoader

from mmrefvlm.datasets.synthetic import generate
from mmrefvlm.registry import DATASETS, MODELS
from mmrefvlm.testing import build_generated_tokenizer, tiny_config

from _timing import synchronize  # the script's folder is on sys.path


class Timer:
    """Accumulates wall time per name; synchronises CUDA around every measurement."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.seconds: Dict[str, float] = defaultdict(float)
        self.active = False

    @contextmanager
    def __call__(self, name: str):
        synchronize(self.device)
        start = time.perf_counter()
        yield
        synchronize(self.device)
        if self.active:
            self.seconds[name] += time.perf_counter() - start

    def wrap(self, owner: object, method: str, name: str) -> None:
        """Time every call of ``owner.method`` under ``name``."""
        inner: Callable = getattr(owner, method)

        @functools.wraps(inner)  # keeps the signature, which the detector inspects
        def timed(*args, **kwargs):
            with self(name):
                return inner(*args, **kwargs)

        setattr(owner, method, timed)


def build(data_root: str, device: str):
    build_generated_tokenizer(data_root)
    init_default_scope('mmrefvlm')
    cfg = tiny_config(data_root)
    dataset_cfg = cfg.train_dataloader.dataset
    model = MODELS.build(cfg.model).to(device).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    loader = DataLoader(DATASETS.build(dataset_cfg), batch_size=cfg.train_dataloader.batch_size,
                        shuffle=True, collate_fn=pseudo_collate, num_workers=0)
    return model, optimizer, loader


def instrument(model, timer: Timer) -> None:
    timer.wrap(model.backbone, 'forward', 'vision tower')
    timer.wrap(model.neck, 'forward', 'LLM neck (embedding + LM)')
    timer.wrap(model.router, 'route', 'router')
    for unit, head in model.heads.items():
        timer.wrap(head, 'loss', f'{unit} head loss (matcher included)')
        if hasattr(head, 'assigner'):
            timer.wrap(head.assigner, 'assign_batch', f'{unit} head matcher')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', type=int, default=20)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as root:
        generate(root, num_train=8 * (args.steps + 2), num_val=1, seed=0, image_size=128)
        model, optimizer, loader = build(root, args.device)
        timer = Timer(args.device)
        instrument(model, timer)
        batches = iter(loader)
        for step in range(args.steps + 2):
            timer.active = step >= 2  # two warm-up steps
            with timer('step (total)'):
                with timer('data (loader + preprocessor)'):
                    data = model.data_preprocessor(next(batches), True)
                with timer('forward (total)'):
                    losses = model.loss(**data)
                loss = sum(v for k, v in losses.items() if 'loss' in k)
                with timer('backward'):
                    loss.backward()
                with timer('optimizer step'):
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
    total = timer.seconds['step (total)']
    print('| part | ms per step | share of the step |')
    print('|---|---|---|')
    for name, seconds in timer.seconds.items():
        print(f'| {name} | {seconds / args.steps * 1e3:.1f} | {seconds / total:.0%} |')


if __name__ == '__main__':
    main()
