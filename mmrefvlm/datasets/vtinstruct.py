"""``VTInstructDataset``: VT-Instruct JSONL records (``docs/vtinstruct_format.md``) as an MMEngine
dataset."""
import os
import os.path as osp
import re
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mmengine.dataset import BaseDataset
from mmengine.logging import MMLogger

from mmrefvlm.registry import DATASETS
from .bad_samples import skip_or_raise
from .record import Fault, load_meta, meta_path_for
from .record_index import NO_TASK, load_index, read_record, task_code
from .tasks import TASKS

BAD_RECORD_POLICIES = ('skip', 'raise')
# How many faults the summary warning quotes in full.
FAULTS_QUOTED = 5


def _compact(positions: np.ndarray) -> np.ndarray:
    """``positions`` as int32 when they fit (half the memory of a filter over 100 M rows)."""
    return positions.astype(np.int32) if len(positions) < 2**31 else positions


def _reason(fault: Fault) -> str:
    """The kind of a fault, for counting: its field without list indices."""
    return re.sub(r'\[\d+\]', '[]', fault.field)


@DATASETS.register_module()
class VTInstructDataset(BaseDataset):
    """One VT-Instruct conversation per sample, read lazily from a JSONL file.

    The dataset holds a byte-offset index of the file (:mod:`.record_index`), not its records:
    a ``[R]`` array of numbers, memory-mapped from a cache built once (beside the file, or in
    ``index_dir``) and rebuilt when the file changes, so dataloader workers and ranks share it
    without copies. ``get_data_info(i)`` reads and converts one line.

    Building the index validates every line with
    :func:`mmrefvlm.datasets.record.validate_record` (no image is opened). A bad line is
    reported with its file, line and field, e.g. ``VTInstructDataset: train.jsonl line 1842:
    conversations[1].refs: 'refs' has 3 entries but the answer has 2 <REF> tokens``; it is then
    skipped (one summary warning when the dataset is initialised) or stops initialisation with a
    ``ValueError``, as ``on_bad_record`` says.

    The ``meta.json`` beside the JSONL file (``classes``, ``keypoint_names``,
    ``keypoint_sigmas``, ``skeleton``) is merged into ``metainfo``; keys given in the
    ``metainfo`` argument win.

    Each data info holds: ``img_path`` and ``depth_path`` (joined with
    ``data_prefix['img_path']``; ``depth_path`` is ``None`` without a depth map), ``img_id`` and
    ``record_id`` (the record's ``id``), ``sample_idx``, ``task``, ``width``, ``height``,
    ``instances`` and ``prompts`` (absolute pixels of the original image, as in the file),
    ``conversations``, ``classes`` (the record's offered class names, else the set's
    ``meta.json`` classes, else ``None``), ``references`` (all reference answers or captions of
    the final turn, for the metrics, or ``None``), ``prompt_types`` and ``line`` (1-based line
    of the record in the file).

    Args:
        ann_file: the JSONL file (joined with ``data_root`` when relative).
        tasks: keep only records of these tasks (all tasks when ``None``).
        max_records: keep at most this many records (the first valid ones of the file).
        on_bad_record: ``'skip'`` or ``'raise'``.
        index_dir: where to cache the index (default: beside ``ann_file``, as
            ``<ann_file>.index.npy`` / ``.json``).
        lazy_init: as in :class:`mmengine.dataset.BaseDataset`.
        **kwargs: the other arguments of :class:`mmengine.dataset.BaseDataset`
            (``data_root``, ``data_prefix=dict(img_path=IMAGE_ROOT)``, ``pipeline``,
            ``test_mode``, ``indices``, ``metainfo``, ...); ``serialize_data`` has nothing
            to serialize and is ignored.
    """

    def __init__(self,
                 ann_file: str,
                 tasks: Optional[Sequence[str]] = None,
                 max_records: Optional[int] = None,
                 on_bad_record: str = 'skip',
                 index_dir: Optional[str] = None,
                 lazy_init: bool = False,
                 **kwargs) -> None:
        if on_bad_record not in BAD_RECORD_POLICIES:
            raise ValueError(f'VTInstructDataset: on_bad_record must be one of '
                             f'{BAD_RECORD_POLICIES}, got {on_bad_record!r}')
        unknown = [task for task in tasks or () if task not in TASKS]
        if unknown:
            raise ValueError(f'VTInstructDataset: unknown tasks {unknown}; known tasks: '
                             f'{", ".join(TASKS)}')
        if max_records is not None and max_records < 0:
            raise ValueError(f'VTInstructDataset: max_records must be >= 0, got {max_records}')
        self.tasks = None if tasks is None else tuple(tasks)
        self.max_records = max_records
        self.on_bad_record = on_bad_record
        self.index_dir = index_dir
        self._rows: Optional[np.ndarray] = None  # [R] index rows (ROW_DTYPE), memory-mapped
        self._kept: Optional[np.ndarray] = None  # [len] rows kept by the filters (None: all)
        self._sample_ids: Optional[np.ndarray] = None  # [len] sample_idx, when `indices` is set
        self._fd: Optional[Tuple[int, int]] = None  # (pid, descriptor) of the open ann_file
        super().__init__(ann_file=ann_file, lazy_init=True, **kwargs)
        meta_file = meta_path_for(self.ann_file)
        if osp.isfile(meta_file):
            for key, value in load_meta(meta_file).items():
                self._metainfo.setdefault(key, value)
        if not lazy_init:
            self.full_init()

    def full_init(self) -> None:
        """Load (or build) the index, apply ``on_bad_record``, ``tasks``, ``max_records`` and
        ``indices``."""
        if self._fully_initialized:
            return
        index = load_index(self.ann_file, self._metainfo, self.index_dir)
        rows = index.rows  # a memory map; slicing it keeps it one
        kept = None  # positions of the kept rows in `rows`; None: all of them, no array
        if self.tasks is not None:
            kept = _compact(np.flatnonzero(
                np.isin(rows['task'], [task_code(task) for task in self.tasks])))
        if self.max_records is not None:
            if kept is None:
                rows = rows[:self.max_records]
            else:
                kept = kept[:self.max_records]
        lines = rows['line'] if kept is None else rows['line'][kept]
        self._apply_bad_record_policy(index.faults, lines)
        if self._indices is not None:
            subset = (np.arange(min(self._indices, len(lines))) if isinstance(
                self._indices, int) else np.asarray(self._indices, dtype=np.int64))
            self._sample_ids = subset
            kept = subset if kept is None else kept[subset]
        self._rows, self._kept = rows, kept
        self._fully_initialized = True

    def _apply_bad_record_policy(self, faults: Dict[int, Tuple[int, List[Fault]]],
                                 kept_lines: np.ndarray) -> None:
        """Raise the first fault, or warn once about all, of the bad lines that pass the task
        filter and come before the last kept record when ``max_records`` cut the file short
        (the lines a front-to-back reading would have met)."""
        codes = None if self.tasks is None else {task_code(task) for task in self.tasks}
        cut = self.max_records is not None and len(kept_lines) == self.max_records
        last_line = (int(kept_lines[-1]) if len(kept_lines) else 0) if cut else None
        skipped: List[Tuple[int, List[Fault]]] = []
        for line, (code, line_faults) in faults.items():
            if last_line is not None and line > last_line:
                break
            if codes is not None and code != NO_TASK and code not in codes:
                continue
            if self.on_bad_record == 'raise':
                raise ValueError(self._describe(line, line_faults[0]))
            skipped.append((line, line_faults))
        if skipped:
            self._warn_skipped(skipped, len(kept_lines))

    def __len__(self) -> int:
        if not self._fully_initialized:
            self.full_init()
        return len(self._rows) if self._kept is None else len(self._kept)

    def get_data_info(self, idx: int) -> dict:
        """Read, decode and convert the record of sample ``idx``."""
        if not self._fully_initialized:
            self.full_init()
        if not -len(self) <= idx < len(self):
            raise IndexError(f'VTInstructDataset: index {idx} out of range for {len(self)} '
                             'records')
        idx %= len(self)
        row = self._rows[idx if self._kept is None else self._kept[idx]]
        sample_idx = int(idx if self._sample_ids is None else self._sample_ids[idx])
        return self.parse_record(read_record(self._descriptor(), row), int(row['line']),
                                 sample_idx)

    def conversation_lengths(self) -> np.ndarray:
        """``[len]`` characters of each sample's conversation turns (see
        :func:`.samplers.conversation_length`), from the index: no record is read."""
        if not self._fully_initialized:
            self.full_init()
        lengths = self._rows['length']
        return lengths if self._kept is None else lengths[self._kept]

    def _descriptor(self) -> int:
        """A read-only descriptor of ``ann_file``, opened once per process."""
        if self._fd is None or self._fd[0] != os.getpid():
            self._fd = (os.getpid(), os.open(self.ann_file, os.O_RDONLY))
        return self._fd[1]

    def __getstate__(self) -> dict:
        """Pickle without the index rows or the descriptor: a copy (a spawned worker) reloads
        the memory-mapped index instead of receiving it."""
        state = self.__dict__.copy()
        state.update(_rows=None, _kept=None, _sample_ids=None, _fd=None,
                     _fully_initialized=False)
        return state

    def parse_record(self, record: dict, line: int, sample_idx: int) -> dict:
        """Turn one valid record into a data info (paths joined with the image root)."""
        img_root = self.data_prefix.get('img_path', '')
        depth = record.get('depth')
        return dict(
            img_path=osp.join(img_root, record['image']),
            depth_path=None if depth is None else osp.join(img_root, depth),
            img_id=record['id'],
            record_id=record['id'],
            sample_idx=sample_idx,
            line=line,
            task=record['task'],
            width=record['width'],
            height=record['height'],
            instances=record['instances'],
            prompts=record.get('prompts', []),
            conversations=record['conversations'],
            classes=record.get('classes') or self._metainfo.get('classes'),
            references=record.get('references'),
            prompt_types=[prompt['type'] for prompt in record.get('prompts', [])])

    def prepare_data(self, idx: int):
        """Run the pipeline; a record the pipeline rejects (``ValueError``, e.g. a first turn
        longer than ``max_length``) follows ``on_bad_record``: skipped with a warning (the
        training loader then draws another sample) or raised with its file and line."""
        try:
            return super().prepare_data(idx)
        except ValueError as error:
            info = self.get_data_info(idx)
            message = f'VTInstructDataset: {self.ann_file} line {info["line"]}: {error}'
            return skip_or_raise(message, error, self.on_bad_record, self.test_mode)

    def _describe(self, line: int, fault: Fault) -> str:
        return f'VTInstructDataset: {self.ann_file} line {line}: {fault}'

    def _warn_skipped(self, skipped: List[Tuple[int, List[Fault]]], kept: int) -> None:
        """One warning: how many records were skipped, faults counted by kind, the first few."""
        reasons = Counter(_reason(fault) for _, faults in skipped for fault in faults)
        counts = ', '.join(f'{reason}: {n}' for reason, n in reasons.most_common())
        quoted = [self._describe(line, fault) for line, faults in skipped for fault in faults]
        more = len(quoted) - FAULTS_QUOTED
        message = (f'VTInstructDataset: skipped {len(skipped)} bad records of {self.ann_file} '
                   f'(kept {kept}); faults by field: {counts}\n' +
                   '\n'.join(quoted[:FAULTS_QUOTED]) +
                   (f'\n... and {more} more faults (run tools/dataset_converters/'
                    'validate_vtinstruct.py to list them all)' if more > 0 else ''))
        MMLogger.get_current_instance().warning(message)
