"""The arguments ``tools/train.py`` and ``tools/test.py`` share, and the cheap checks that run on
them before anything heavy is imported or built, so ``--help`` and a mistyped path answer at
once. Only the standard library is imported here (MMEngine when ``--cfg-options`` is used)."""
import argparse
import os.path as osp
from typing import Optional


class CfgOptionsAction(argparse.Action):
    """MMEngine's ``DictAction`` (``KEY=VALUE`` pairs into a dict), imported only when the
    option is given."""

    def __call__(self, parser, namespace, values, option_string=None):
        from mmengine.config import DictAction
        DictAction(self.option_strings, self.dest)(parser, namespace, values, option_string)


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--work-dir', help='directory for logs, checkpoints and outputs')
    parser.add_argument(
        '--cfg-options', nargs='+', action=CfgOptionsAction,
        help='override config keys, e.g. model.neck.max_new_tokens=64')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def require_file(parser: argparse.ArgumentParser, path: Optional[str], what: str) -> None:
    """Stop with a usage error when ``path`` is given but is not a file.

    Args:
        parser: reports the error (exit status 2, like any other argument error).
        path: the argument's value; ``None`` passes.
        what: the argument, for the message (``'config'``, ``'--resume'``).
    """
    if path is not None and not osp.isfile(path):
        parser.error(f'{what}: {path} is not a file' if osp.exists(path) else
                     f'{what}: {path} does not exist')
