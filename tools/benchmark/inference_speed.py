"""Inference throughput of ``REFVLMInferencer``: batch 1 against batch ``--batch-size``.

    python tools/benchmark/inference_speed.py CONFIG [--weights CKPT] [--data data/synthetic]
        [--num-images 32] [--batch-size 8] [--threads 2]

Asks the REC/RES questions of the first ``--num-images`` held-out records of a VT-Instruct set
(``DATA/val.jsonl``), once image by image and once in batches, and prints images/s and
generated tokens/s of each run (the answers are re-tokenised to count tokens), the CPU time of
each, and the ratios.
Both runs are greedy, so they give the same answers; the script checks that they do.
"""
import argparse
import json
import os.path as osp
import sys
import time
from typing import Dict, List, Optional


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='REFVLMInferencer throughput')
    parser.add_argument('config', help='config file, or an exported directory')
    parser.add_argument('--weights', help='checkpoint (random initialisation without)')
    parser.add_argument('--data', default='data/synthetic', help='holds val.jsonl and images')
    parser.add_argument('--num-images', type=int, default=32)
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    parser.add_argument('--device', default='cpu')
    return parser.parse_args(argv)


def held_out_requests(data: str, count: int) -> List[dict]:
    """``{img, text, task}`` of the first ``count`` REC/RES records of ``data/val.jsonl``."""
    requests = []
    with open(osp.join(data, 'val.jsonl'), encoding='utf-8') as lines:
        for line in lines:
            record = json.loads(line)
            if record['task'] in ('rec', 'res') and len(requests) < count:
                requests.append(dict(img=osp.join(data, record['image']),
                                     text=record['conversations'][0]['value'],
                                     task=record['task']))
    if len(requests) < count:
        raise SystemExit(f'{data}/val.jsonl has only {len(requests)} REC/RES records')
    return requests


def timed_run(inferencer, requests: List[dict], batch_size: int) -> Dict[str, float]:
    tokenizer = inferencer.model.neck.tokenizer
    start, cpu_start = time.perf_counter(), time.process_time()
    predictions = inferencer(requests, batch_size=batch_size)['predictions']
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    # + 1: the end-of-sequence token each answer generated
    tokens = sum(len(tokenizer(p['text'], add_special_tokens=False)['input_ids']) + 1
                 for p in predictions)
    return dict(batch_size=batch_size, seconds=seconds, cpu_seconds=cpu_seconds,
                images_per_s=len(requests) / seconds,
                tokens_per_s=tokens / seconds, tokens=tokens,
                texts=[p['text'] for p in predictions])


def main(argv: Optional[List[str]] = None) -> Dict[str, dict]:
    args = parse_args(argv)
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    import torch

    from mmrefvlm.apis import REFVLMInferencer

    if args.threads:
        torch.set_num_threads(args.threads)
    inferencer = REFVLMInferencer(args.config, weights=args.weights, device=args.device,
                                  show_progress=False)
    requests = held_out_requests(args.data, args.num_images)
    timed_run(inferencer, requests[:2], 1)  # warm-up: first-call allocations and caches
    single = timed_run(inferencer, requests, 1)
    batched = timed_run(inferencer, requests, args.batch_size)
    same = sum(a == b for a, b in zip(single['texts'], batched['texts']))
    print(f'{len(requests)} images, {torch.get_num_threads()} threads, device {args.device}')
    print(f'{"batch":>5}  {"seconds":>8}  {"CPU s":>8}  {"images/s":>9}  {"tokens/s":>9}  '
          f'{"tokens":>7}')
    for run in (single, batched):
        print(f'{run["batch_size"]:>5}  {run["seconds"]:>8.2f}  {run["cpu_seconds"]:>8.2f}  '
              f'{run["images_per_s"]:>9.2f}  {run["tokens_per_s"]:>9.1f}  {run["tokens"]:>7}')
    # on a shared machine the wall-clock ratio moves with the other jobs; the CPU-time ratio
    # (this process's threads) much less
    print(f'batch {args.batch_size} / batch 1: '
          f'{batched["images_per_s"] / single["images_per_s"]:.2f}x images/s (wall clock), '
          f'{single["cpu_seconds"] / batched["cpu_seconds"]:.2f}x in CPU time; '
          f'identical answers: {same}/{len(requests)}')
    return dict(single=single, batched=batched)


if __name__ == '__main__':
    main()
