"""The VT-Instruct record schema (``docs/internals.md`` §2): validate one JSONL record.

A record is one conversation about one image. :func:`validate_record` returns every fault of a
record as a :class:`Fault` naming the field (``conversations[1].refs``) and saying what is wrong in
words a user can act on; it never raises on bad input. :func:`read_records` walks the lines of a
JSONL file, adding the file-level faults (invalid JSON, duplicate ids). Coordinates are absolute
pixels of the original image (COCO conventions: bbox ``[x, y, w, h]``, RLE or polygon masks,
keypoints ``[x1, y1, v1, ...]``). The dataset and the validator CLI both build on this module.
"""
import json
import math
import os.path as osp
from dataclasses import dataclass
from typing import Any, Collection, Iterable, Iterator, List, Optional, Tuple, Union

from mmrefvlm.trp import TRPParseError, parse_answer
from .tasks import TASKS, UNITS

# Slack, in pixels, allowed when checking that a box lies inside the image.
BOX_SLACK = 1.0
HUMAN, GPT = 'human', 'gpt'
TAGS_NOT_IN_HUMAN_TURNS = ('<REF>', '<Phrase>', '</Phrase>', '<Unit>', '</Unit>', '<Task>',
                           '</Task>')
PROMPT_TYPES = ('point', 'box', 'scribble', 'mask')
KEYPOINT_VISIBILITIES = (0, 1, 2)
META_KEYS = ('classes', 'keypoint_names', 'keypoint_sigmas', 'skeleton')


@dataclass(frozen=True)
class Fault:
    """One problem of a record.

    Args:
        field: where the problem is, e.g. ``conversations[1].refs`` or ``instances[0].bbox``.
        message: what is wrong, for a user.
    """
    field: str
    message: str

    def __str__(self) -> str:
        return f'{self.field}: {self.message}'


def _task_spec(task: Any):
    """The ``TaskSpec`` of ``task``, or ``None`` when it is not a known task name."""
    return TASKS.get(task) if isinstance(task, str) else None


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _numbers(value: Any, length: Optional[int] = None) -> bool:
    """Whether ``value`` is a list of finite numbers (of ``length`` entries if given)."""
    return (isinstance(value, list) and all(_is_number(v) for v in value)
            and (length is None or len(value) == length))


class _Checker:
    """Collects the faults of one record; ``size`` is ``(width, height)`` once known valid."""

    def __init__(self, record: dict, meta: Optional[dict]) -> None:
        self.record = record
        self.meta = meta or {}
        self.faults: List[Fault] = []
        self.size: Optional[Tuple[int, int]] = None

    def fault(self, field: str, message: str) -> None:
        self.faults.append(Fault(field, message))

    def run(self) -> List[Fault]:
        self.check_header()
        num_instances = self.check_instances()
        num_prompts = self.check_prompts()
        self.check_conversations(num_instances, num_prompts)
        return self.faults

    # -- id, task, image, size, depth, classes ---------------------------------------------
    def check_header(self) -> None:
        record = self.record
        for key in ('id', 'task', 'image', 'width', 'height', 'instances', 'conversations'):
            if key not in record:
                self.fault(key, f"required key '{key}' is missing")
        for key in ('id', 'image'):
            if key in record and (not isinstance(record[key], str) or not record[key]):
                self.fault(key, f"'{key}' must be a non-empty string, got {record[key]!r}")
        task = record.get('task')
        if 'task' in record and _task_spec(task) is None:
            self.fault('task', f'unknown task {task!r}; known tasks: {", ".join(TASKS)}')
        width, height = record.get('width'), record.get('height')
        for key, value in (('width', width), ('height', height)):
            if key in record and not _is_positive_int(value):
                self.fault(key, f"'{key}' must be a positive integer, got {value!r}")
        if _is_positive_int(width) and _is_positive_int(height):
            self.size = (width, height)
        if 'depth' in record and (not isinstance(record['depth'], str) or not record['depth']):
            self.fault('depth', f"'depth' must be a path string, got {record['depth']!r}")
        if getattr(_task_spec(task), 'unit', None) == 'depth' and 'depth' not in record:
            self.fault('depth', f"task {task!r} decodes depth but the record has no 'depth' map")
        for key in ('classes', 'references'):
            value = record.get(key)
            if value is not None and not (isinstance(value, list)
                                          and all(isinstance(v, str) for v in value)):
                self.fault(key, f"'{key}' must be a list of strings")

    # -- instances ---------------------------------------------------------------------------
    def check_instances(self) -> Optional[int]:
        """Check ``instances``; return their number, or ``None`` if the list itself is bad."""
        instances = self.record.get('instances')
        if instances is None:
            return None
        if not isinstance(instances, list):
            self.fault('instances', f"'instances' must be a list, got {type(instances).__name__}")
            return None
        for i, instance in enumerate(instances):
            field = f'instances[{i}]'
            if not isinstance(instance, dict):
                self.fault(field, f'an instance must be an object, got {instance!r}')
                continue
            if 'bbox' not in instance:
                self.fault(f'{field}.bbox', "required key 'bbox' is missing")
            else:
                self.check_box(f'{field}.bbox', instance['bbox'])
            category = instance.get('category')
            if not isinstance(category, str) or not category:
                self.fault(f'{field}.category',
                           f"'category' must be a non-empty string, got {category!r}")
            if 'segmentation' in instance:
                self.check_mask(f'{field}.segmentation', instance['segmentation'])
            if 'keypoints' in instance:
                self.check_keypoints(f'{field}.keypoints', instance['keypoints'])
            if 'depth' in instance and not (_is_number(instance['depth'])
                                            and instance['depth'] >= 0):
                self.fault(f'{field}.depth',
                           f"'depth' must be a non-negative number (metres), "
                           f"got {instance['depth']!r}")
        return len(instances)

    def check_box(self, field: str, box: Any) -> None:
        """``box`` is ``[x, y, w, h]``, absolute pixels, ``w, h > 0``, inside the image."""
        if not _numbers(box, 4):
            self.fault(field, f'a box must be 4 numbers [x, y, w, h], got {box!r}')
            return
        x, y, w, h = box
        if w <= 0 or h <= 0:
            self.fault(field, f'box width and height must be positive, got w={w}, h={h}')
            return
        if self.size is not None:
            width, height = self.size
            if (x < -BOX_SLACK or y < -BOX_SLACK or x + w > width + BOX_SLACK
                    or y + h > height + BOX_SLACK):
                self.fault(field, f'box [{x}, {y}, {w}, {h}] (xywh) leaves the '
                           f'{width}x{height} image')

    def check_point(self, field: str, point: Any) -> bool:
        """``point`` is ``[x, y]`` inside the image (with slack); report and return validity."""
        if not _numbers(point, 2):
            self.fault(field, f'a point must be 2 numbers [x, y], got {point!r}')
            return False
        if self.size is not None:
            (x, y), (width, height) = point, self.size
            if not (-BOX_SLACK <= x <= width + BOX_SLACK
                    and -BOX_SLACK <= y <= height + BOX_SLACK):
                self.fault(field, f'point [{x}, {y}] lies outside the {width}x{height} image')
                return False
        return True

    def check_mask(self, field: str, mask: Any) -> None:
        """``mask`` is an RLE ``{size: [h, w], counts: str}`` or a list of polygons."""
        if isinstance(mask, dict):
            size, counts = mask.get('size'), mask.get('counts')
            if not isinstance(counts, str):
                self.fault(field, 'an RLE mask needs compressed \'counts\' (a string), got '
                           f'{type(counts).__name__}')
            if self.size is not None and size != [self.size[1], self.size[0]]:
                self.fault(field, f'RLE size {size!r} differs from the image size '
                           f'[height, width] = [{self.size[1]}, {self.size[0]}]')
            return
        if not isinstance(mask, list) or not mask:
            self.fault(field, 'a mask must be an RLE object or a non-empty list of polygons')
            return
        for j, polygon in enumerate(mask):
            if not _numbers(polygon) or len(polygon) < 6 or len(polygon) % 2:
                self.fault(f'{field}[{j}]', 'a polygon must be an even-length list of at '
                           'least 6 numbers [x1, y1, x2, y2, x3, y3, ...]')

    def check_keypoints(self, field: str, keypoints: Any) -> None:
        """``keypoints`` is ``[x1, y1, v1, ...]`` with K triples (K from meta), v in {0, 1, 2}."""
        if not _numbers(keypoints) or not keypoints or len(keypoints) % 3:
            self.fault(field, 'keypoints must be a non-empty list of numbers [x1, y1, v1, ...] '
                       'whose length is a multiple of 3')
            return
        names = self.meta.get('keypoint_names')
        if names is not None and len(keypoints) != 3 * len(names):
            self.fault(field, f'{len(keypoints) // 3} keypoints but meta.json names '
                       f'{len(names)} ({len(keypoints)} numbers instead of {3 * len(names)})')
        bad = [v for v in keypoints[2::3] if v not in KEYPOINT_VISIBILITIES]
        if bad:
            self.fault(field, f'keypoint visibility must be 0, 1 or 2, got {bad[0]!r}')

    # -- prompts -----------------------------------------------------------------------------
    def check_prompts(self) -> Optional[int]:
        """Check ``prompts``; return their number, or ``None`` if the list itself is bad."""
        prompts = self.record.get('prompts', [])
        if not isinstance(prompts, list):
            self.fault('prompts', f"'prompts' must be a list, got {type(prompts).__name__}")
            return None
        for i, prompt in enumerate(prompts):
            field = f'prompts[{i}]'
            if not isinstance(prompt, dict) or prompt.get('type') not in PROMPT_TYPES:
                kind = prompt.get('type') if isinstance(prompt, dict) else prompt
                self.fault(f'{field}.type', f'prompt type must be one of '
                           f'{", ".join(PROMPT_TYPES)}, got {kind!r}')
                continue
            data, kind = prompt.get('data'), prompt['type']
            if kind == 'point':
                self.check_point(f'{field}.data', data)
            elif kind == 'box':
                self.check_box(f'{field}.data', data)
            elif kind == 'scribble':
                if not isinstance(data, list) or len(data) < 2:
                    self.fault(f'{field}.data',
                               'a scribble must be a polyline of at least 2 points [[x, y], ...]')
                    continue
                for j, point in enumerate(data):
                    if not self.check_point(f'{field}.data[{j}]', point):
                        break
            else:
                self.check_mask(f'{field}.data', data)
        return len(prompts)

    # -- conversations -----------------------------------------------------------------------
    def check_conversations(self, num_instances: Optional[int],
                            num_prompts: Optional[int]) -> None:
        turns = self.record.get('conversations')
        if turns is None:
            return
        if not isinstance(turns, list) or not turns:
            self.fault('conversations', "'conversations' must be a non-empty list of turns")
            return
        # triplets: (turn index, Triplet) of every answer that parses
        num_regions, image_turns, triplets = 0, [], []
        for i, turn in enumerate(turns):
            field = f'conversations[{i}]'
            expected = HUMAN if i % 2 == 0 else GPT
            if not isinstance(turn, dict):
                self.fault(field, f'a turn must be an object, got {turn!r}')
                continue
            value = turn.get('value')
            if turn.get('from') != expected:
                self.fault(f'{field}.from', f"turns alternate human/gpt starting with human: "
                           f"expected {expected!r}, got {turn.get('from')!r}")
            if not isinstance(value, str):
                self.fault(f'{field}.value', f"'value' must be a string, got {value!r}")
                continue
            image_turns.extend([i] * value.count('<image>'))
            if expected == HUMAN:
                num_regions += value.count('<region>')
                self.check_human_turn(field, turn)
            else:
                triplets.extend((i, triplet)
                                for triplet in self.check_gpt_turn(field, turn, num_instances))
        if len(turns) % 2 == 1:
            self.fault('conversations', 'the conversation must end with a gpt turn')
        self.check_image_placeholder(turns, image_turns)
        if num_prompts is not None and num_regions != num_prompts:
            self.fault('prompts', f'human turns have {num_regions} <region> tokens but '
                       f"'prompts' has {num_prompts} entries")
        self.check_task_units(triplets, num_prompts)

    def check_human_turn(self, field: str, turn: dict) -> None:
        tags = [tag for tag in TAGS_NOT_IN_HUMAN_TURNS if tag in turn['value']]
        if tags:
            self.fault(f'{field}.value', f'human turns may not contain {", ".join(tags)}')
        if 'refs' in turn:
            self.fault(f'{field}.refs', "human turns have no 'refs'")

    def check_gpt_turn(self, field: str, turn: dict, num_instances: Optional[int]) -> list:
        """Check one answer; return its parsed triplets (empty if it does not parse)."""
        value = turn['value']
        for tag in ('<region>', '<Task>'):
            if tag in value:
                what = ('<region> belongs in human turns' if tag == '<region>' else
                        'the VD-CoT <Task> block is derived from the answer, not stored')
                self.fault(f'{field}.value', f'gpt turns may not contain {tag}: {what}')
        try:
            triplets = parse_answer(value)
        except TRPParseError as error:
            self.fault(f'{field}.value', f'answer does not parse: {error}')
            triplets = []
        self.check_refs(field, turn, value.count('<REF>'), num_instances)
        return triplets

    def check_refs(self, field: str, turn: dict, num_refs: int,
                   num_instances: Optional[int]) -> None:
        refs = turn.get('refs')
        if refs is None:
            if num_refs:
                self.fault(f'{field}.refs', f"the answer has {num_refs} <REF> tokens but the "
                           "turn has no 'refs'")
            return
        if not isinstance(refs, list):
            self.fault(f'{field}.refs', f"'refs' must be a list of instance indices, got {refs!r}")
            return
        if len(refs) != num_refs:
            self.fault(f'{field}.refs', f"'refs' has {len(refs)} entries but the answer has "
                       f'{num_refs} <REF> tokens')
        for j, ref in enumerate(refs):
            if not isinstance(ref, int) or isinstance(ref, bool) or ref < 0:
                self.fault(f'{field}.refs[{j}]', f'a ref must be an instance index, got {ref!r}')
            elif num_instances is not None and ref >= num_instances:
                self.fault(f'{field}.refs[{j}]', f'ref {ref} points past the {num_instances} '
                           'instances of the record')

    def check_image_placeholder(self, turns: list, image_turns: List[int]) -> None:
        if len(image_turns) != 1:
            self.fault('conversations', f'<image> must appear exactly once in the conversation, '
                       f'found {len(image_turns)} times')
        elif image_turns[0] % 2 == 1:
            self.fault(f'conversations[{image_turns[0]}].value',
                       '<image> must be in a human turn')

    def check_task_units(self, triplets: list, num_prompts: Optional[int]) -> None:
        """Every unit of every triplet is a known unit; prompted tasks have prompts; unit tasks
        have triplets (open-vocabulary tasks may answer a negative in plain text), all with the
        task's unit; text-only tasks have no triplet."""
        spec = _task_spec(self.record.get('task'))
        for turn, triplet in triplets:
            unknown = [unit for unit in triplet.units if unit not in UNITS]
            if unknown:
                self.fault(f'conversations[{turn}].value', f'triplet {triplet.phrase!r} has '
                           f'unknown unit {", ".join(unknown)!r}; known units: '
                           f'{", ".join(UNITS)}')
        if spec is None:
            return
        if spec.needs_prompts and num_prompts == 0:
            self.fault('prompts', f'task {spec.name!r} needs visual prompts but the record has '
                       'none')
        if spec.unit is None:
            for turn, triplet in triplets:
                self.fault(f'conversations[{turn}].value', f'task {spec.name!r} answers in text '
                           f'only but triplet {triplet.phrase!r} decodes '
                           f'{", ".join(triplet.units)!r}')
            return
        # an open-vocabulary question may be a negative: none of the asked classes is present
        if not triplets and spec.family != 'open_vocabulary':
            self.fault('conversations', f'task {spec.name!r} decodes {spec.unit!r} but no '
                       'answer has a triplet')
        for turn, triplet in triplets:
            if spec.unit not in triplet.units:
                self.fault(f'conversations[{turn}].value', f'triplet {triplet.phrase!r} has unit '
                           f'{", ".join(triplet.units)!r} but task {spec.name!r} decodes '
                           f'{spec.unit!r}')


def validate_record(record: dict, meta: Optional[dict] = None) -> List[Fault]:
    """Return every fault of one VT-Instruct record (empty when the record is valid).

    Uniqueness of ``id`` is a property of a file and is checked by :func:`read_records`.

    Args:
        record: one decoded JSONL line.
        meta: the set's ``meta.json`` (its ``keypoint_names`` fix the number of keypoints).

    Returns:
        list[Fault]: in the order the fields are checked.
    """
    if not isinstance(record, dict):
        return [Fault('record', f'a record must be a JSON object, got {type(record).__name__}')]
    return _Checker(record, meta).run()


def load_meta(path: str) -> dict:
    """Read a ``meta.json`` (``classes``, ``keypoint_names``, ``keypoint_sigmas``, ``skeleton``).

    Raises:
        ValueError: naming the file and the field when the file is not a valid meta file.
    """
    try:
        with open(path, encoding='utf-8') as f:
            meta = json.load(f)
    except json.JSONDecodeError as error:
        raise ValueError(f'{path}: not valid JSON: {error}') from None
    if not isinstance(meta, dict):
        raise ValueError(f'{path}: meta must be a JSON object')
    for key in ('classes', 'keypoint_names'):
        if key in meta and not (isinstance(meta[key], list)
                                and all(isinstance(v, str) for v in meta[key])):
            raise ValueError(f"{path}: '{key}' must be a list of strings")
    if 'keypoint_sigmas' in meta:
        sigmas = meta['keypoint_sigmas']
        if not _numbers(sigmas) or len(sigmas) != len(meta.get('keypoint_names', sigmas)):
            raise ValueError(f"{path}: 'keypoint_sigmas' must be one number per keypoint name")
    num_keypoints = len(meta.get('keypoint_names', []))
    for pair in meta.get('skeleton', []):
        if not (isinstance(pair, list) and len(pair) == 2
                and all(isinstance(i, int) and 0 <= i < num_keypoints for i in pair)):
            raise ValueError(f"{path}: 'skeleton' entries must be pairs of keypoint indices, "
                             f'got {pair!r}')
    return meta


def meta_path_for(jsonl_path: str) -> str:
    """The ``meta.json`` that sits beside ``jsonl_path``."""
    return osp.join(osp.dirname(jsonl_path), 'meta.json')


class RecordDecodeError(ValueError):
    """A JSONL line that is not valid UTF-8; the message says where, for a user."""


def decode_line(raw: bytes) -> str:
    """Decode one raw JSONL line as UTF-8.

    The dataset's reader and the validator both read lines as bytes and call this, so a file
    with one bad line stays usable: that line becomes a fault of its own.

    Raises:
        RecordDecodeError: naming the (1-based) byte of the line and the offending bytes.
    """
    try:
        return raw.decode('utf-8')
    except UnicodeDecodeError as error:
        bad = raw[error.start:error.end]
        raise RecordDecodeError(f'not valid UTF-8: byte {error.start + 1} of the line '
                                f'({bad!r}: {error.reason})') from None


def parse_line(line: Union[str, bytes]) -> Tuple[Optional[dict], List[Fault]]:
    """Decode one non-blank JSONL line (raw bytes are decoded by :func:`decode_line`).

    Returns:
        ``(record, [])`` for a JSON object, else ``(None, faults)`` (invalid UTF-8 or JSON, or a
        JSON value that is not an object).
    """
    if isinstance(line, bytes):
        try:
            line = decode_line(line)
        except RecordDecodeError as error:
            return None, [Fault('encoding', str(error))]
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        return None, [Fault('json', f'not valid JSON: {error.msg} (character {error.pos})')]
    if not isinstance(record, dict):
        return None, validate_record(record)
    return record, []


def read_records(lines: Iterable[Union[str, bytes]], meta: Optional[dict] = None,
                 tasks: Optional[Collection[str]] = None
                 ) -> Iterator[Tuple[int, Optional[dict], List[Fault]]]:
    """Decode and validate the lines of a VT-Instruct JSONL file.

    Blank lines are ignored. A repeated ``id`` is a fault of the later record. A line that is
    not valid UTF-8 (``bytes`` lines, see :func:`decode_line`) is a fault of that line only.

    Args:
        lines: the file's lines, ``str`` or ``bytes`` (a file opened in text or binary mode).
        meta: the set's ``meta.json`` content, passed to :func:`validate_record`.
        tasks: when given, records of another known task are passed over without validation
            (records with an unknown task are still yielded, with their fault).

    Yields:
        ``(line, record, faults)``: 1-based line number, the decoded record (``None`` if the
        line is not a JSON object) and its faults.
    """
    first_line_of_id = {}
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record, faults = parse_line(line)
        if record is None:
            yield line_no, None, faults
            continue
        record_id = record.get('id')
        duplicate_of = None
        if isinstance(record_id, str):
            duplicate_of = first_line_of_id.setdefault(record_id, line_no)
        if (tasks is not None and _task_spec(record.get('task')) is not None
                and record['task'] not in tasks):
            continue
        faults = validate_record(record, meta)
        if duplicate_of not in (None, line_no):
            faults.append(Fault('id', f'duplicate id {record_id!r} (first used on line '
                                f'{duplicate_of})'))
        yield line_no, record, faults
