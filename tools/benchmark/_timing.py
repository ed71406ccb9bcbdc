"""Wall-clock timing shared by the benchmarks; CUDA work is synchronised around every
measurement, so a time covers the kernels it launched."""
import statistics
import time
from typing import Callable, List, Sequence

import torch


def synchronize(device: str) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device == 'cuda':
        torch.cuda.synchronize()


def median_seconds(functions: Sequence[Callable[[], object]], device: str, repeats: int,
                   min_seconds: float = 0.0) -> List[float]:
    """Median wall time (s) of each function over at least ``repeats`` rounds and
    ``min_seconds``; the functions run in turn in every round, so that a change of machine load
    hits them alike."""
    times: List[List[float]] = [[] for _ in functions]
    begin = time.perf_counter()
    while len(times[0]) < repeats or time.perf_counter() - begin < min_seconds:
        for function, bucket in zip(functions, times):
            synchronize(device)
            start = time.perf_counter()
            function()
            synchronize(device)
            bucket.append(time.perf_counter() - start)
    return [statistics.median(bucket) for bucket in times]
