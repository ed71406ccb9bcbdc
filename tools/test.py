"""Evaluate a REF-VLM checkpoint (MMDetection's ``tools/test.py`` arguments).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--show-dir DIR] [--out results.pkl]
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from launch import add_common_args, build_runner, load_config  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate a REF-VLM model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    add_common_args(parser)
    parser.add_argument('--out', help='dump the predictions to this pickle file')
    parser.add_argument('--show-dir', help='write visualised predictions to this directory')
    parser.add_argument('--show-num', type=int, default=8,
                        help='how many samples --show-dir visualises')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = load_config(args)
    cfg.load_from = args.checkpoint
    if args.out:
        cfg.test_evaluator = [*_as_list(cfg.test_evaluator),
                              dict(type='DumpDetResults', out_file_path=args.out)]
    if args.show_dir:
        cfg.custom_hooks = [*cfg.get('custom_hooks', []),
                            dict(type='REFVLMVisualizationHook', out_dir=args.show_dir,
                                 max_samples=args.show_num)]
    build_runner(cfg).test()


def _as_list(evaluator):
    return list(evaluator) if isinstance(evaluator, (list, tuple)) else [evaluator]


if __name__ == '__main__':
    main()
