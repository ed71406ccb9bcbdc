"""Benchmark: the batched group matcher against a per-(sample, group) scipy loop.

Both solve the same random square groups (``max(n_pred, n_gt)`` per group drawn from a size
range, groups interleaved in query order as the router may list them) and must reach the same
total cost; the table gives the median time of each and their ratio, measured side by side.

    python tools/benchmark/group_matcher.py                  # CPU, one thread
    python tools/benchmark/group_matcher.py --device cuda    # costs on the GPU
"""
import argparse
import statistics
import time
import tracemalloc
from typing import Callable, List, Sequence, Tuple

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from mmrefvlm.models.task_modules.group_matching import solve_grouped_assignment

# (samples, queries per sample, smallest group, largest group)
SETTINGS = ((8, 16, 1, 4), (64, 100, 1, 6), (128, 100, 1, 6))
Batch = Tuple[List[Tensor], List[Tensor], List[Tensor]]


def random_batch(samples: int, queries: int, low: int, high: int, device: str,
                 seed: int = 0) -> Batch:
    """Per sample: a ``[queries, queries]`` uniform cost and group ids of square groups whose
    sizes are drawn from ``[low, high]`` (the last one cut to fit), shuffled in query order."""
    gen = torch.Generator().manual_seed(seed)
    costs, pred_ids, gt_ids = [], [], []
    for _ in range(samples):
        sizes, total = [], 0
        while total < queries:
            size = min(int(torch.randint(low, high + 1, (1, ), generator=gen)), queries - total)
            sizes.append(size)
            total += size
        ids = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
        pred_ids.append(ids[torch.randperm(queries, generator=gen)].to(device))
        gt_ids.append(ids[torch.randperm(queries, generator=gen)].to(device))
        costs.append(torch.rand(queries, queries, generator=gen).to(device))
    return costs, pred_ids, gt_ids


def scipy_loop(costs: Sequence[Tensor], pred_ids: Sequence[Tensor],
               gt_ids: Sequence[Tensor]) -> List[Tuple[Tensor, Tensor]]:
    """The reference: one ``linear_sum_assignment`` per (sample, group)."""
    out = []
    for cost, gp, gg in zip(costs, pred_ids, gt_ids):
        cost, gp, gg = cost.detach().cpu().double().numpy(), gp.cpu().numpy(), gg.cpu().numpy()
        rows, cols = [], []
        for group in np.unique(gp):
            r_idx, c_idx = np.flatnonzero(gp == group), np.flatnonzero(gg == group)
            r, c = linear_sum_assignment(cost[np.ix_(r_idx, c_idx)])
            rows.append(r_idx[r])
            cols.append(c_idx[c])
        rows, cols = np.concatenate(rows), np.concatenate(cols)
        order = np.argsort(rows)
        device = pred_ids[0].device
        out.append((torch.from_numpy(rows[order]).to(device),
                    torch.from_numpy(cols[order]).to(device)))
    return out


def total_cost(costs: Sequence[Tensor], matches: Sequence[Tuple[Tensor, Tensor]]) -> float:
    return sum(float(c.double()[r, j].sum()) for c, (r, j) in zip(costs, matches))


def median_ms(functions: Sequence[Callable[[], object]], repeats: int, device: str,
              min_seconds: float = 2.0) -> List[float]:
    """Median wall time (ms) of each function over at least ``repeats`` rounds and
    ``min_seconds``; the functions run in turn in every round, so that a change of machine load
    hits them alike."""
    times: List[List[float]] = [[] for _ in functions]
    begin = time.perf_counter()
    while len(times[0]) < repeats or time.perf_counter() - begin < min_seconds:
        for function, bucket in zip(functions, times):
            if device == 'cuda':
                torch.cuda.synchronize()
            start = time.perf_counter()
            function()
            if device == 'cuda':
                torch.cuda.synchronize()
            bucket.append(time.perf_counter() - start)
    return [statistics.median(bucket) * 1e3 for bucket in times]


def peak_numpy_mib(function: Callable[[], object]) -> float:
    """Peak memory numpy allocates during ``function()`` (tracemalloc), MiB."""
    tracemalloc.start()
    function()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--repeats', type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print('| batch × queries | group sizes | per-group scipy loop (ms) | matcher (ms) | speed-up '
          '| same optimum | matcher peak numpy memory (MiB) |')
    print('|---|---|---|---|---|---|---|')
    for samples, queries, low, high in SETTINGS:
        batch = random_batch(samples, queries, low, high, args.device)
        ours = solve_grouped_assignment(*batch)  # also warms the subset tables
        reference = scipy_loop(*batch)
        same = abs(total_cost(batch[0], ours) - total_cost(batch[0], reference)) < 1e-6
        loop_ms, ours_ms = median_ms(
            [lambda: scipy_loop(*batch), lambda: solve_grouped_assignment(*batch)],
            args.repeats, args.device)
        memory = peak_numpy_mib(lambda: solve_grouped_assignment(*batch))
        print(f'| {samples} × {queries} | {low}–{high} | {loop_ms:.2f} | {ours_ms:.2f} | '
              f'{loop_ms / ours_ms:.1f}× | {"yes" if same else "NO"} | {memory:.2f} |')


if __name__ == '__main__':
    main()
