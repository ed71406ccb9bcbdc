"""A byte-offset index of a VT-Instruct JSONL file, so that a dataset of 100 M records holds
arrays of numbers instead of Python objects.

One pass over the file decodes and validates every record (:mod:`.record`) and keeps, per valid
record, where its line starts and ends, its 1-based line number, its task and its conversation
length; the faults of the bad lines are kept with their line numbers. The index is cached as two
files, ``<cache>.npy`` (the rows, a structured array) and ``<cache>.json`` (the key and the
faults), beside the JSONL file or in a cache directory. It is reused while the key holds (size
and modification time of the JSONL file, the ``meta.json`` fields validation reads, the source
of the validator) and rebuilt otherwise. The rows are memory-mapped read-only, so every
dataloader worker and every rank on a machine reads the same pages of the page cache.
"""
import array
import hashlib
import json
import os
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
from mmengine.dist import barrier, get_rank, get_world_size

from . import record as record_module
from . import tasks as tasks_module
from .record import META_KEYS, Fault, parse_line, validate_record
from .samplers import conversation_length
from .tasks import TASKS

TASK_NAMES: Tuple[str, ...] = tuple(TASKS)
# task code of a line whose task is unknown or unreadable: its faults pass every task filter
NO_TASK = -1
ROW_DTYPE = np.dtype([('offset', '<i8'), ('size', '<i8'), ('line', '<i8'), ('task', '<i2'),
                      ('length', '<i4')])


@dataclass
class RecordIndex:
    """The index of one JSONL file.

    Attributes:
        rows: ``[R]`` structured array (``ROW_DTYPE``), one row per valid record in file order:
            ``offset``/``size`` (bytes of the line), ``line`` (1-based), ``task`` (position in
            ``TASK_NAMES``), ``length`` (characters of the conversation turns).
        faults: ``line -> (task code, faults)`` for every bad line, in file order.
    """
    rows: np.ndarray
    faults: Dict[int, Tuple[int, List[Fault]]]


def task_code(task) -> int:
    return TASK_NAMES.index(task) if isinstance(task, str) and task in TASKS else NO_TASK


def cache_path_for(jsonl_path: str, cache_dir: Optional[str] = None) -> str:
    """The cache files' common stem: ``<jsonl>.index`` beside the file, or a name unique to the
    file's absolute path inside ``cache_dir``."""
    if cache_dir is None:
        return jsonl_path + '.index'
    digest = hashlib.sha1(osp.abspath(jsonl_path).encode()).hexdigest()[:12]
    return osp.join(cache_dir, f'{osp.basename(jsonl_path)}.{digest}.index')


def index_key(jsonl_path: str, meta: Optional[dict]) -> dict:
    """What the index depends on: the file's size and mtime, the meta fields, the validator."""
    stat = os.stat(jsonl_path)
    validator = hashlib.sha1()
    for module in (record_module, tasks_module):
        with open(module.__file__, 'rb') as f:
            validator.update(f.read())
    meta = meta or {}
    key = dict(size=stat.st_size, mtime_ns=stat.st_mtime_ns,
               meta={name: meta[name] for name in META_KEYS if name in meta},
               validator=validator.hexdigest())
    return json.loads(json.dumps(key))  # as read back from the cache (tuples become lists)


def build_index(jsonl_path: str, meta: Optional[dict] = None) -> RecordIndex:
    """Decode and validate every line of ``jsonl_path`` (one pass, no record kept in memory).

    Faults are those of :func:`.record.read_records` without a task filter: validation faults,
    then, for a repeated ``id``, a duplicate fault naming the line of its first use.
    """
    columns = {name: array.array('q') for name in ROW_DTYPE.names}
    faults: Dict[int, Tuple[int, List[Fault]]] = {}
    id_hashes, id_lines = array.array('q'), array.array('q')
    offset = 0
    with open(jsonl_path, 'rb') as lines:
        for line_no, raw in enumerate(lines, start=1):
            start, offset = offset, offset + len(raw)
            if not raw.strip():
                continue
            record, line_faults = parse_line(raw)
            if record is None:
                faults[line_no] = (NO_TASK, line_faults)
                continue
            if isinstance(record.get('id'), str):
                id_hashes.append(hash(record['id']))
                id_lines.append(line_no)
            code = task_code(record.get('task'))
            line_faults = validate_record(record, meta)
            if line_faults:
                faults[line_no] = (code, line_faults)
                continue
            for name, value in zip(ROW_DTYPE.names,
                                   (start, len(raw), line_no, code, conversation_length(record))):
                columns[name].append(value)
    rows = np.empty(len(columns['offset']), ROW_DTYPE)
    for name in ROW_DTYPE.names:
        rows[name] = np.frombuffer(columns[name], dtype=np.int64)
    duplicates = _duplicate_ids(jsonl_path, np.frombuffer(id_hashes, np.int64),
                                np.frombuffer(id_lines, np.int64))
    if duplicates:
        rows = _move_duplicates_to_faults(rows, duplicates, faults)
    return RecordIndex(rows, dict(sorted(faults.items())))


def _duplicate_ids(jsonl_path: str, hashes: np.ndarray,
                   lines: np.ndarray) -> Dict[int, Tuple[str, int]]:
    """``line -> (id, first line of that id)`` for every record whose id was used before.

    Ids are compared by hash first (8 bytes a record instead of a set of 100 M strings); the
    lines of colliding hashes are read again to compare the ids themselves."""
    order = np.argsort(hashes, kind='stable')
    sorted_hashes = hashes[order]
    repeated = np.flatnonzero(sorted_hashes[1:] == sorted_hashes[:-1])
    candidates = np.unique(lines[np.union1d(order[repeated], order[repeated + 1])])
    if len(candidates) == 0:
        return {}
    first_line_of_id: Dict[str, int] = {}
    duplicates: Dict[int, Tuple[str, int]] = {}
    wanted = set(candidates.tolist())
    with open(jsonl_path, 'rb') as f:
        for line_no, raw in enumerate(f, start=1):
            if line_no in wanted:
                record_id = json.loads(raw)['id']
                first = first_line_of_id.setdefault(record_id, line_no)
                if first != line_no:
                    duplicates[line_no] = (record_id, first)
    return duplicates


def _move_duplicates_to_faults(rows: np.ndarray, duplicates: Dict[int, Tuple[str, int]],
                               faults: Dict[int, Tuple[int, List[Fault]]]) -> np.ndarray:
    codes = dict(zip(rows['line'].tolist(), rows['task'].tolist()))
    for line, (record_id, first) in duplicates.items():
        fault = Fault('id', f'duplicate id {record_id!r} (first used on line {first})')
        code, line_faults = faults.get(line, (codes.get(line), []))
        faults[line] = (code, line_faults + [fault])
    return rows[~np.isin(rows['line'], list(duplicates))]


def save_index(index: RecordIndex, stem: str, key: dict) -> None:
    """Write ``<stem>.npy`` then ``<stem>.json``, each atomically (the json, written last,
    marks a complete index)."""
    os.makedirs(osp.dirname(osp.abspath(stem)), exist_ok=True)
    tmp = f'{stem}.{os.getpid()}.tmp'
    with open(tmp, 'wb') as f:
        np.save(f, index.rows)
    os.replace(tmp, stem + '.npy')
    header = dict(key=key, num_rows=len(index.rows),
                  faults=[[line, code, [[f.field, f.message] for f in line_faults]]
                          for line, (code, line_faults) in index.faults.items()])
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(header, f)
    os.replace(tmp, stem + '.json')


def load_cached_index(stem: str, key: dict) -> Optional[RecordIndex]:
    """The cached index if it exists and its key equals ``key``, else ``None``."""
    try:
        with open(stem + '.json', encoding='utf-8') as f:
            header = json.load(f)
        if header.get('key') != key:
            return None
        # numpy cannot memory-map zero bytes
        rows = np.load(stem + '.npy', mmap_mode='r' if header.get('num_rows') else None)
    except (OSError, ValueError):
        return None
    if rows.dtype != ROW_DTYPE or len(rows) != header['num_rows']:
        return None
    faults = {line: (code, [Fault(field, message) for field, message in line_faults])
              for line, code, line_faults in header['faults']}
    return RecordIndex(rows, faults)


def load_index(jsonl_path: str, meta: Optional[dict] = None,
               cache_dir: Optional[str] = None) -> RecordIndex:
    """The index of ``jsonl_path``: from the cache when it is current, else built and cached.

    Under a distributed launch rank 0 builds and the other ranks wait, then read its cache (a
    rank that cannot see that cache, e.g. on another machine's local disk, builds its own).
    """
    stem = cache_path_for(jsonl_path, cache_dir)
    key = index_key(jsonl_path, meta)
    if get_world_size() > 1:
        if get_rank() == 0:
            _load_or_build(jsonl_path, meta, stem, key)
        barrier()
    return _load_or_build(jsonl_path, meta, stem, key)


def _load_or_build(jsonl_path: str, meta: Optional[dict], stem: str, key: dict) -> RecordIndex:
    cached = load_cached_index(stem, key)
    if cached is not None:
        return cached
    save_index(build_index(jsonl_path, meta), stem, key)
    index = load_cached_index(stem, key)
    if index is None:
        raise OSError(f'VTInstructDataset: the index of {jsonl_path} written to {stem}.npy/.json '
                      'could not be read back (another process rewrote it?)')
    return index


def read_record(fd: int, row: np.void) -> dict:
    """The record of one index row, read with ``os.pread`` (no shared file position, so one
    descriptor serves forked workers)."""
    return json.loads(os.pread(fd, int(row['size']), int(row['offset'])))
