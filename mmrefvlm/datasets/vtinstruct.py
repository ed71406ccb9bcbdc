"""``VTInstructDataset``: VT-Instruct JSONL records (``docs/vtinstruct_format.md``) as an MMEngine
dataset."""
import os.path as osp
import re
from collections import Counter
from typing import List, Optional, Sequence, Tuple

from mmengine.dataset import BaseDataset
from mmengine.logging import MMLogger

from mmrefvlm.registry import DATASETS
from .record import Fault, load_meta, meta_path_for, read_records
from .tasks import TASKS

BAD_RECORD_POLICIES = ('skip', 'raise')
# How many faults the summary warning quotes in full.
FAULTS_QUOTED = 5


def _reason(fault: Fault) -> str:
    """The kind of a fault, for counting: its field without list indices."""
    return re.sub(r'\[\d+\]', '[]', fault.field)


@DATASETS.register_module()
class VTInstructDataset(BaseDataset):
    """One VT-Instruct conversation per sample, read from a JSONL file.

    Every line is validated with :func:`mmrefvlm.datasets.record.validate_record` (no image is
    opened, so loading stays fast on large files). A bad line is reported with its file, line and
    field, e.g. ``VTInstructDataset: train.jsonl line 1842: conversations[1].refs: 'refs' has 3
    entries but the answer has 2 <REF> tokens``; it is then skipped (one summary warning at the
    end of loading) or stops loading with a ``ValueError``, as ``on_bad_record`` says.

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
        lazy_init: as in :class:`mmengine.dataset.BaseDataset`.
        **kwargs: the other arguments of :class:`mmengine.dataset.BaseDataset`
            (``data_root``, ``data_prefix=dict(img_path=IMAGE_ROOT)``, ``pipeline``,
            ``test_mode``, ``serialize_data``, ``indices``, ``metainfo``, ...).
    """

    def __init__(self,
                 ann_file: str,
                 tasks: Optional[Sequence[str]] = None,
                 max_records: Optional[int] = None,
                 on_bad_record: str = 'skip',
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
        super().__init__(ann_file=ann_file, lazy_init=True, **kwargs)
        meta_file = meta_path_for(self.ann_file)
        if osp.isfile(meta_file):
            for key, value in load_meta(meta_file).items():
                self._metainfo.setdefault(key, value)
        if not lazy_init:
            self.full_init()

    def load_data_list(self) -> List[dict]:
        """Read, validate and convert the records of ``ann_file``."""
        data_list: List[dict] = []
        skipped: List[Tuple[int, List[Fault]]] = []
        with open(self.ann_file, encoding='utf-8') as lines:
            for line, record, faults in read_records(lines, self._metainfo, self.tasks):
                if self.max_records is not None and len(data_list) >= self.max_records:
                    break
                if faults:
                    if self.on_bad_record == 'raise':
                        raise ValueError(self._describe(line, faults[0]))
                    skipped.append((line, faults))
                    continue
                data_list.append(self.parse_record(record, line, len(data_list)))
        if skipped:
            self._warn_skipped(skipped, len(data_list))
        return data_list

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
            if self.on_bad_record == 'raise' or self.test_mode:
                raise ValueError(message) from error
            MMLogger.get_current_instance().warning(f'{message} (skipped)')
            return None

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
