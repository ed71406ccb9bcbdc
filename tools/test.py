"""Evaluate a REF-VLM checkpoint (MMDetection's ``tools/test.py`` arguments).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--show-dir DIR] [--out results.pkl]
                         [--with-baseline]

CHECKPOINT is a plain weights file: ``work_dirs/<config>/final_weights.pth`` (written when
training ends), an ``iter_<N>.pth`` file of a DDP run, or a DeepSpeed checkpoint directory
consolidated by ``tools/model_converters/consolidate_checkpoint.py``.

``--with-baseline`` also evaluates :class:`mmrefvlm.models.baselines.TrivialBaseline` (image-blind
answers: whole-image box/mask, constant text and depth) on the same data with the same metrics,
and prints both side by side. The baseline's config, logs and outputs go to ``WORK_DIR/baseline``,
so the work dir's config stays the trained model's.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
# the repository root, last: configs under projects/ import their package by custom_imports
sys.path.append(osp.dirname(osp.dirname(osp.abspath(__file__))))
from cli_args import add_common_args, is_deepspeed_checkpoint, require_file  # noqa: E402

# Where --with-baseline writes, under the work dir.
BASELINE_DIR = 'baseline'


def parse_args(argv=None) -> argparse.Namespace:
    """Parse and check the arguments (files exist) before anything heavy is imported."""
    parser = argparse.ArgumentParser(description='Evaluate a REF-VLM model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    add_common_args(parser)
    parser.add_argument('--out', help='dump the predictions to this pickle file')
    parser.add_argument('--show-dir', help='write visualised predictions to this directory')
    parser.add_argument('--show-num', type=int, default=8,
                        help='how many samples --show-dir visualises')
    parser.add_argument('--with-baseline', action='store_true',
                        help='also evaluate the trivial baseline and print both')
    args = parser.parse_args(argv)
    require_file(parser, args.config, 'config')
    if is_deepspeed_checkpoint(args.checkpoint):
        weights = f'{osp.splitext(osp.normpath(args.checkpoint))[0]}_weights.pth'
        parser.error(f'checkpoint: {args.checkpoint} is a DeepSpeed checkpoint directory; write '
                     'its weights to one file first: python tools/model_converters/'
                     f'consolidate_checkpoint.py {args.checkpoint} {weights}')
    require_file(parser, args.checkpoint, 'checkpoint')
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    from launch import build_runner, load_config
    cfg = load_config(args)
    # evaluation needs no ZeRO: MMEngine's Runner reads the plain weights file (under
    # FlexibleRunner + DeepSpeed, `load_from` reads DeepSpeed directories only)
    cfg.strategy = None
    baseline_cfg = cfg.copy() if args.with_baseline else None
    cfg.load_from = args.checkpoint
    if args.out:
        cfg.test_evaluator = [*_as_list(cfg.test_evaluator),
                              dict(type='DumpDetResults', out_file_path=args.out)]
    if args.show_dir:
        cfg.custom_hooks = [*cfg.get('custom_hooks', []),
                            dict(type='REFVLMVisualizationHook', out_dir=args.show_dir,
                                 max_samples=args.show_num)]
    metrics = build_runner(cfg).test()
    if baseline_cfg is None:
        return metrics
    keypoints = cfg.model.get('heads', {}).get('keypoint', {}).get('num_keypoints', 17)
    baseline_cfg.model = dict(type='TrivialBaseline',
                              data_preprocessor=cfg.model.data_preprocessor,
                              num_keypoints=keypoints)
    baseline_cfg.load_from = None
    baseline_cfg.work_dir = osp.join(cfg.work_dir, BASELINE_DIR)
    baseline_cfg.experiment_name = f'{osp.splitext(osp.basename(args.config))[0]}_baseline'
    baseline = build_runner(baseline_cfg).test()
    print(format_comparison(metrics, baseline))
    return metrics


def format_comparison(model: dict, baseline: dict) -> str:
    """A table of every metric: the model's value beside the trivial baseline's."""
    width = max([len(k) for k in model] + [6])
    lines = [f'{"metric":<{width}}  {"model":>9}  {"baseline":>9}', '-' * (width + 22)]
    for key in sorted(model):
        lines.append(f'{key:<{width}}  {_fmt(model[key]):>9}  {_fmt(baseline.get(key)):>9}')
    return '\n'.join(lines)


def _fmt(value) -> str:
    return '-' if value is None else f'{value:.4f}' if isinstance(value, float) else str(value)


def _as_list(evaluator):
    return list(evaluator) if isinstance(evaluator, (list, tuple)) else [evaluator]


if __name__ == '__main__':
    main()
