"""Generate the offline synthetic VT-Instruct set (coloured shapes with exact ground truth).

Example::

    python tools/dataset_converters/generate_synthetic.py --out data/synthetic \
        --num-train 3000 --num-val 300 --seed 0 --task-weights rec=4,res=4

A second run with the same arguments (and unchanged generator, renderer and TRP code) finds
``DIR/manifest.json`` and skips the work.
"""
import argparse
from typing import Dict


def parse_task_weights(text: str) -> Dict[str, float]:
    """``'rec=3,res=3'`` → ``{'rec': 3.0, 'res': 3.0}``."""
    weights = {}
    for item in filter(None, (part.strip() for part in text.split(','))):
        name, sep, value = item.partition('=')
        if not sep:
            raise argparse.ArgumentTypeError(f'--task-weights: {item!r} is not TASK=WEIGHT')
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f'--task-weights: weight {value!r} of {name!r} is not a number') from None
    return weights


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--num-train', type=int, default=3000, help='train records')
    parser.add_argument('--num-val', type=int, default=300, help='val records')
    parser.add_argument('--seed', type=int, default=0, help='base seed')
    parser.add_argument('--image-size', type=int, default=128, help='canvas side in pixels')
    parser.add_argument('--tasks', type=lambda s: [t for t in s.split(',') if t],
                        default=None, help='comma-separated task names (default: all)')
    parser.add_argument('--task-weights', type=parse_task_weights, default=None,
                        help='comma-separated TASK=WEIGHT overrides, e.g. rec=4,res=4')
    parser.add_argument('--grounding-rounds', type=int, default=1,
                        help='distinct expressions asked per REC/RES training record, one '
                             'round each (default 1: one, a quarter with a follow-up)')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    from tqdm import tqdm

    from mmrefvlm.datasets.synthetic import generate
    summary = generate(args.out, num_train=args.num_train, num_val=args.num_val, seed=args.seed,
                       image_size=args.image_size, tasks=args.tasks,
                       task_weights=args.task_weights,
                       grounding_rounds=args.grounding_rounds, progress=tqdm)
    state = 'already up to date (skipped)' if summary['skipped'] else 'generated'
    print(f'{args.out}: {state}; generation took {summary["seconds"]:.1f} s')
    for split, counts in summary['records'].items():
        total = sum(counts.values())
        per_task = ', '.join(f'{task}={n}' for task, n in counts.items())
        print(f'  {split}: {total} records ({per_task})')


if __name__ == '__main__':
    main()
