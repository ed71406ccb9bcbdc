"""Where converted records go: a JSONL file, a ``meta.json`` beside it and a summary of the run.

Every converter yields records (built by the task renderers) and counts what it leaves out in a
:class:`ConversionSummary`; :func:`write_jsonl` checks each record with
:func:`mmrefvlm.datasets.record.validate_record` before writing it, so a converted file always
passes ``tools/dataset_converters/validate_vtinstruct.py``.
"""
import json
import os
import os.path as osp
import random
from collections import Counter
from typing import Dict, Iterable, Optional

from ..record import meta_path_for, validate_record


class ConversionSummary:
    """Records written per task and items skipped per reason."""

    def __init__(self) -> None:
        self.written: Counter = Counter()
        self.skipped: Counter = Counter()

    def skip(self, reason: str, count: int = 1) -> None:
        """Count ``count`` source items left out for ``reason`` (a short fixed phrase)."""
        self.skipped[reason] += count

    @property
    def num_written(self) -> int:
        return sum(self.written.values())

    @property
    def num_skipped(self) -> int:
        return sum(self.skipped.values())

    def format(self, out: str) -> str:
        """Human-readable summary: records per task, then skips per reason (most frequent first)."""
        lines = [f'{out}: {self.num_written} records written']
        lines += [f'  {task}: {count}' for task, count in sorted(self.written.items())]
        lines.append(f'{self.num_skipped} skipped')
        lines += [f'  {reason}: {count}' for reason, count in self.skipped.most_common()]
        return '\n'.join(lines)


def record_rng(seed: int, *key) -> random.Random:
    """A generator for one record, fixed by ``seed`` and the record's key (order independent).

    String seeds hash with SHA-512 inside ``random.seed``, so the draw does not depend on
    ``PYTHONHASHSEED`` nor on which other records were converted before.
    """
    return random.Random('/'.join(str(part) for part in (seed, ) + key))


def write_jsonl(path: str,
                records: Iterable[Dict],
                summary: ConversionSummary,
                meta: Optional[Dict] = None) -> None:
    """Validate and write ``records`` to ``path``, one JSON object per line.

    A record with a fault (``validate_record``) or a repeated id is not written; it is counted
    in ``summary`` as ``'invalid record (FIELD)'`` / ``'duplicate record id'``.

    Args:
        path: the output JSONL file (its folder is created).
        records: records as the task renderers build them.
        summary: receives the per-task counts and the skips.
        meta: the set's meta (``keypoint_names`` fixes the number of keypoints checked).
    """
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    seen = set()
    with open(path, 'w', encoding='utf-8') as f:
        for record in records:
            faults = validate_record(record, meta)
            if faults:
                summary.skip(f'invalid record ({faults[0].field})')
                continue
            if record['id'] in seen:
                summary.skip('duplicate record id')
                continue
            seen.add(record['id'])
            f.write(json.dumps(record, ensure_ascii=False) + '\n')
            summary.written[record['task']] += 1


def write_meta(jsonl_path: str, meta: Dict) -> str:
    """Write ``meta`` as the ``meta.json`` beside ``jsonl_path``; return its path."""
    path = meta_path_for(jsonl_path)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(meta, f, indent=2)
        f.write('\n')
    return path
