"""Train a REF-VLM model (MMDetection's ``tools/train.py`` arguments).

    python tools/train.py configs/refvlm/refvlm_tinyllama_tinyconv_stage2_synthetic.py
    tools/dist_train.sh configs/refvlm_stage2.py 8
"""
import argparse
import glob
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
# the repository root, last: configs under projects/ import their package by custom_imports
sys.path.append(osp.dirname(osp.dirname(osp.abspath(__file__))))
from cli_args import add_common_args, is_deepspeed_checkpoint, require_file  # noqa: E402

# The file MMEngine's CheckpointHook writes in the work dir, naming the latest checkpoint.
LAST_CHECKPOINT = 'last_checkpoint'


def parse_args(argv=None) -> argparse.Namespace:
    """Parse and check the arguments (files exist) before anything heavy is imported."""
    parser = argparse.ArgumentParser(description='Train a REF-VLM model')
    parser.add_argument('config', help='config file path')
    add_common_args(parser)
    parser.add_argument('--amp', action='store_true', help='mixed precision (AmpOptimWrapper)')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint (a file, or a DeepSpeed checkpoint directory), '
        'or from the latest one in the work dir (stops when there is none)')
    args = parser.parse_args(argv)
    require_file(parser, args.config, 'config')
    if args.resume not in (None, 'auto') and not is_deepspeed_checkpoint(args.resume):
        require_file(parser, args.resume, '--resume')
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    from launch import build_runner, load_config
    cfg = load_config(args)
    if args.amp:
        if cfg.get('strategy') is not None:
            raise SystemExit(f'--amp: {args.config} sets a strategy, which owns the precision '
                             "(DeepSpeed's bf16 section); drop --amp")
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('dtype', 'bfloat16')
    if args.resume == 'auto':
        if not osp.isfile(osp.join(cfg.work_dir, LAST_CHECKPOINT)):
            sys.exit(no_checkpoint_message(cfg.work_dir))
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    from mmrefvlm.engine.runner import NothingToTrain
    try:
        build_runner(cfg).train()
    except NothingToTrain as error:
        sys.exit(f'train.py: --resume: {error}')


def no_checkpoint_message(work_dir: str) -> str:
    """Why ``--resume`` stops in ``work_dir``, and the work dirs beside it that can resume."""
    others = sorted(osp.dirname(path) for path in glob.glob(
        osp.join(osp.dirname(osp.abspath(work_dir)), '*', LAST_CHECKPOINT)))
    return (f'train.py: --resume: no checkpoint to resume in the work dir {work_dir} (no '
            f'{LAST_CHECKPOINT} file: is it the work dir of the run to resume?). Pass '
            '--work-dir of that run or --resume FILE, or leave out --resume to train from '
            'scratch.' + (f' Work dirs beside it with a checkpoint: {", ".join(others)}'
                          if others else ''))


if __name__ == '__main__':
    main()
