"""Benchmark ``VTInstructDataset`` on a generated JSONL file of N records: index build time,
resident memory of the dataset object, random access rate.

    python tools/benchmark/benchmark_vtinstruct_dataset.py --records 1000000 --work-dir /tmp/vt

The records cycle through the test fixture's seven task families (``tests/data/vtinstruct``)
with unique ids. RSS is read from ``/proc/self/status`` (Linux). Each measurement runs in a fresh
process, so one step's memory does not leak into the next.
"""
import argparse
import json
import multiprocessing as mp
import os
import os.path as osp
import random
import shutil
import time
from typing import Callable, Dict

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FIXTURE = osp.join(REPO, 'tests', 'data', 'vtinstruct')


def rss_mib() -> float:
    """Resident set size of this process, MiB."""
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    raise OSError('no VmRSS in /proc/self/status (not Linux?)')


def generate(path: str, count: int) -> None:
    """``count`` records cycling through the fixture's records, ids made unique."""
    with open(osp.join(FIXTURE, 'train.jsonl')) as f:
        records = [json.loads(line) for line in f]
    with open(path, 'w') as out:
        for i in range(count):
            record = records[i % len(records)]
            record['id'] = f'{record["task"]}_{i}'
            out.write(json.dumps(record) + '\n')
    shutil.copy(osp.join(FIXTURE, 'meta.json'), osp.join(osp.dirname(path), 'meta.json'))


def _measure_lazy(ann_file: str, accesses: int) -> Dict[str, float]:
    from mmrefvlm.datasets import VTInstructDataset
    before = rss_mib()
    start = time.perf_counter()
    dataset = VTInstructDataset(ann_file=ann_file)
    init_s = time.perf_counter() - start
    after_init = rss_mib()
    order = random.Random(0).sample(range(len(dataset)), min(accesses, len(dataset)))
    start = time.perf_counter()
    for idx in order:
        dataset.get_data_info(idx)
    access_s = time.perf_counter() - start
    return dict(init_s=init_s, rss_dataset_mib=after_init - before,
                rss_after_access_mib=rss_mib() - before,
                records_per_s=len(order) / access_s)


def _measure_list(ann_file: str, count: int) -> Dict[str, float]:
    """The approach the index replaces: every record decoded into one Python list."""
    before = rss_mib()
    with open(ann_file) as f:
        records = [json.loads(line) for _, line in zip(range(count), f)]
    return dict(rss_list_mib=rss_mib() - before, records=len(records))


def _in_child(function: Callable, *args) -> Dict[str, float]:
    with mp.get_context('spawn').Pool(1) as pool:
        return pool.apply(function, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--records', type=int, default=1_000_000)
    parser.add_argument('--work-dir', required=True, help='where the generated JSONL goes')
    parser.add_argument('--accesses', type=int, default=20000, help='random reads to time')
    parser.add_argument('--list-records', type=int, default=100_000,
                        help='records decoded into a Python list for the comparison')
    args = parser.parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    ann_file = osp.join(args.work_dir, f'vtinstruct_{args.records}.jsonl')
    if not osp.isfile(ann_file):
        generate(ann_file, args.records)
    for suffix in ('.index.npy', '.index.json'):
        if osp.exists(ann_file + suffix):
            os.remove(ann_file + suffix)
    size_mib = os.path.getsize(ann_file) / 2**20
    cold = _in_child(_measure_lazy, ann_file, args.accesses)  # builds the index
    warm = _in_child(_measure_lazy, ann_file, args.accesses)  # memory-maps the cached index
    listed = _in_child(_measure_list, ann_file, args.list_records)
    index_mib = os.path.getsize(ann_file + '.index.npy') / 2**20
    print(f'records: {args.records}  file: {size_mib:.0f} MiB  index: {index_mib:.1f} MiB')
    print(f'index build (cold init): {cold["init_s"]:.1f} s '
          f'({args.records / cold["init_s"]:.0f} records/s)')
    print(f'cached init: {warm["init_s"]:.3f} s; dataset RSS: {warm["rss_dataset_mib"]:.1f} MiB '
          f'after init, {warm["rss_after_access_mib"]:.1f} MiB after {args.accesses} reads')
    print(f'random access: {warm["records_per_s"]:.0f} records/s')
    print(f'for comparison, {listed["records"]} records as Python objects: '
          f'{listed["rss_list_mib"]:.0f} MiB '
          f'({listed["rss_list_mib"] / listed["records"] * 1e8 / 2**10:.0f} GiB per 100 M)')


if __name__ == '__main__':
    main()
