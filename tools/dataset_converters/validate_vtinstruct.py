"""Check a VT-Instruct JSONL file and name the line and field of every fault.

Usage::

    python tools/dataset_converters/validate_vtinstruct.py FILE.jsonl [--image-root DIR]
        [--meta meta.json] [--check-images | --skip-images] [--max-faults N]

Prints every fault as ``FILE:LINE: FIELD: message``, then a per-task summary (records, faulty
records, triplets, ``<REF>`` tokens, prompts by type). Exits 0 when the file is clean, 1 otherwise.
``meta.json`` beside the file is used when ``--meta`` is not given. A line that is not valid UTF-8
is a fault of that line (field ``encoding``). By default the header of every image and depth map
is read (no pixel decoding): missing, empty and non-image files and sizes that differ from the
record's ``width``/``height`` are faults. ``--check-images`` decodes every pixel as well (finds
corrupt and truncated files); ``--skip-images`` opens no image. Paths are relative to
``--image-root`` (default: the file's folder).
"""
import argparse
import os
import os.path as osp
import sys
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

if TYPE_CHECKING:
    from mmrefvlm.datasets.record import Fault

# Files smaller than this validate without a progress bar.
PROGRESS_MIN_BYTES = 1 << 20
UNKNOWN_TASK = '<unknown>'
# How much of each image ``validate_file`` reads: nothing, the header, or every pixel.
IMAGE_CHECKS = ('none', 'header', 'decode')


def check_image_files(record: dict, image_root: str, decode: bool) -> List['Fault']:
    """Faults of the image and depth files of a record: missing, empty, not an image, of
    another size than ``width``/``height``, and (with ``decode``) corrupt or truncated."""
    from mmrefvlm.datasets.image_files import check_image_file
    from mmrefvlm.datasets.record import Fault
    width, height = record.get('width'), record.get('height')
    expected = (width, height) if isinstance(width, int) and isinstance(height, int) else None
    faults = []
    for key in ('image', 'depth'):
        relative = record.get(key)
        if not isinstance(relative, str) or not relative:
            continue
        path = osp.join(image_root, relative)
        problem = check_image_file(path, expected, decode)
        if problem is not None:
            faults.append(Fault(key, f'{path} {problem}'))
    return faults


def _new_task_row() -> dict:
    return dict(records=0, faulty=0, triplets=0, refs=0, prompts=Counter())


def _count_record(row: dict, record: dict) -> None:
    """Add a record's triplets (answers that parse), ``<REF>`` tokens and prompts to ``row``."""
    from mmrefvlm.trp import TRPParseError, parse_answer
    for turn in record.get('conversations') or []:
        if not isinstance(turn, dict) or turn.get('from') != 'gpt':
            continue
        value = turn.get('value')
        if not isinstance(value, str):
            continue
        row['refs'] += value.count('<REF>')
        try:
            row['triplets'] += sum(1 for t in parse_answer(value) if t.units)
        except TRPParseError:
            pass
    prompts = record.get('prompts')
    for prompt in prompts if isinstance(prompts, list) else []:
        if isinstance(prompt, dict) and isinstance(prompt.get('type'), str):
            row['prompts'][prompt['type']] += 1


def validate_file(path: str,
                  image_root: Optional[str] = None,
                  meta: Optional[dict] = None,
                  images: str = 'header') -> Tuple[List[Tuple[int, 'Fault']], dict]:
    """Validate every line of a VT-Instruct JSONL file.

    Args:
        path: the JSONL file.
        image_root: root of the ``image``/``depth`` paths (default: the file's folder).
        meta: the set's meta (default: ``meta.json`` beside the file, when present).
        images: how the image and depth files are checked, one of :data:`IMAGE_CHECKS`:
            ``'none'`` opens none, ``'header'`` checks that each exists, is an image and has the
            record's ``width``/``height``, ``'decode'`` also decodes every pixel (corrupt and
            truncated files).

    Returns:
        ``(faults, summary)``: ``faults`` lists ``(line, Fault)`` in file order; ``summary`` is
        ``dict(records=int, faulty=int, tasks={task: dict(records, faulty, triplets, refs,
        prompts={type: count})})`` with tasks in task-table order, then unknown task names;
        lines that are not JSON objects are counted under ``'<unknown>'``.
    """
    from tqdm import tqdm

    from mmrefvlm.datasets.record import load_meta, meta_path_for, read_records
    from mmrefvlm.datasets.tasks import TASKS
    if images not in IMAGE_CHECKS:
        raise ValueError(f'validate_file: images must be one of {IMAGE_CHECKS}, got {images!r}')
    if meta is None and osp.isfile(meta_path_for(path)):
        meta = load_meta(meta_path_for(path))
    image_root = osp.dirname(path) if image_root is None else image_root
    faults: List[Tuple[int, Fault]] = []
    rows: Dict[str, dict] = defaultdict(_new_task_row)
    size = os.path.getsize(path)
    with open(path, 'rb') as f, tqdm(
            total=size, unit='B', unit_scale=True, desc=osp.basename(path), file=sys.stderr,
            disable=size < PROGRESS_MIN_BYTES) as progress:

        def lines():
            for line in f:
                progress.update(len(line))
                yield line

        for line_no, record, record_faults in read_records(lines(), meta):
            record = record or {}
            if images != 'none':
                record_faults = record_faults + check_image_files(record, image_root,
                                                                  images == 'decode')
            task = record.get('task')
            row = rows[task if isinstance(task, str) else UNKNOWN_TASK]
            row['records'] += 1
            row['faulty'] += bool(record_faults)
            _count_record(row, record)
            faults.extend((line_no, fault) for fault in record_faults)
    order = list(TASKS) + sorted(set(rows) - set(TASKS))
    tasks = {task: dict(rows[task], prompts=dict(rows[task]['prompts']))
             for task in order if task in rows}
    summary = dict(
        records=sum(row['records'] for row in tasks.values()),
        faulty=sum(row['faulty'] for row in tasks.values()),
        tasks=tasks)
    return faults, summary


def format_summary(summary: dict) -> str:
    """The per-task summary as a fixed-width table."""
    from mmrefvlm.datasets.record import PROMPT_TYPES
    prompt_types = list(PROMPT_TYPES) + sorted(
        {kind for row in summary['tasks'].values() for kind in row['prompts']} -
        set(PROMPT_TYPES))
    header = ['task', 'records', 'faulty', 'triplets', '<REF>s'] + [
        f'{kind} prompts' for kind in prompt_types]
    body = [[task, row['records'], row['faulty'], row['triplets'], row['refs']] +
            [row['prompts'].get(kind, 0) for kind in prompt_types]
            for task, row in summary['tasks'].items()]
    body.append(['total', summary['records'], summary['faulty']] +
                [sum(r[i] for r in body) for i in range(3, len(header))])
    widths = [max(len(str(r[i])) for r in [header] + body) for i in range(len(header))]
    return '\n'.join('  '.join(str(cell).ljust(width) if i == 0 else str(cell).rjust(width)
                               for i, (cell, width) in enumerate(zip(r, widths)))
                     for r in [header] + body)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('file', help='the VT-Instruct JSONL file')
    parser.add_argument('--image-root', help='root of image/depth paths (default: the '
                        "file's folder)")
    parser.add_argument('--meta', help='meta.json of the set (default: meta.json beside FILE)')
    images = parser.add_mutually_exclusive_group()
    images.add_argument('--check-images', action='store_true',
                        help='decode every image/depth file in full (corrupt, truncated files)')
    images.add_argument('--skip-images', action='store_true',
                        help='open no image (by default each header is read: missing, empty '
                        'and non-image files, size against width/height)')
    parser.add_argument('--max-faults', type=int, default=None,
                        help='print at most N faults (all are still counted)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from mmrefvlm.datasets.record import load_meta
    meta = load_meta(args.meta) if args.meta else None
    images = 'decode' if args.check_images else 'none' if args.skip_images else 'header'
    faults, summary = validate_file(args.file, args.image_root, meta, images)
    shown = faults if args.max_faults is None else faults[:args.max_faults]
    for line, fault in shown:
        print(f'{args.file}:{line}: {fault}')
    if len(shown) < len(faults):
        print(f'... {len(faults) - len(shown)} more faults not shown (--max-faults)')
    print(format_summary(summary))
    print(f'{len(faults)} faults in {summary["faulty"]} of {summary["records"]} records')
    return 1 if faults else 0


if __name__ == '__main__':
    sys.exit(main())
