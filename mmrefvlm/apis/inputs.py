"""What a user asks REF-VLM about one image, turned into the record the test pipeline reads.

A request is an image (a path, or a BGR ``uint8 [H, W, 3]`` array as ``mmcv.imread`` gives),
a question, optional visual prompts and the task (or unit) to ask for, and optionally earlier
turns of the conversation. :func:`build_record` writes the VT-Instruct fields
(``docs/vtinstruct_format.md``) with an empty final answer, so the test pipeline renders the
prompt exactly as in evaluation.
"""
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import pycocotools.mask as mask_utils

from mmrefvlm.datasets.tasks import TASKS, UNITS
from mmrefvlm.trp import TRPParseError, parse_answer, strip_tags

IMAGE = '<image>'
REGION = '<region>'
PROMPT_TYPES = ('point', 'box', 'scribble', 'mask')
# the task asked for a unit, without and with visual prompts
UNIT_TASKS = {'box': ('rec', 'ig_box'), 'mask': ('res', 'ig_mask'),
              'keypoint': ('keypoint', 'ig_keypoint'), 'depth': ('depth', 'depth')}

ImageInput = Union[str, np.ndarray]


@dataclass
class Request:
    """One image and what to ask about it.

    Args:
        img: image path, or BGR ``uint8 [H, W, 3]``.
        text: the question of this turn. ``<image>`` is put first when absent; when the turns
            carry fewer ``<region>`` placeholders than there are ``visual_prompts``, the missing
            ones are appended to this question.
        task: a task of :data:`mmrefvlm.datasets.tasks.TASKS` or a unit (``box``, ``mask``,
            ``keypoint``, ``depth``); ``None`` asks for boxes (``rec``, or ``ig_box`` with
            visual prompts). It sets the task command; the answer is routed by the units the
            model generates.
        visual_prompts: ``[{'type': 'point', 'data': [x, y]}, {'type': 'box', 'data': [x, y,
            w, h]}, {'type': 'scribble', 'data': [[x, y], ...]}, {'type': 'mask', 'data': RLE
            or bool/uint8 [H, W] array}]`` in original pixels, in ``<region>`` order.
        history: earlier ``(question, answer)`` turns, oldest first; an answer is the text the
            model generated (its ``<Task>`` block is dropped).
    """
    img: ImageInput
    text: str
    task: Optional[str] = None
    visual_prompts: Sequence[dict] = field(default_factory=list)
    history: Sequence[Tuple[str, str]] = field(default_factory=list)


def resolve_task(task: Optional[str], has_prompts: bool) -> str:
    """The task name for ``task`` (a task or a unit name; ``None`` asks for boxes).

    Raises:
        ValueError: ``task`` is neither a known task nor a unit.
    """
    if task is None:
        task = 'box'
    if task in UNIT_TASKS:
        return UNIT_TASKS[task][int(has_prompts)]
    if task not in TASKS:
        raise ValueError(f'REFVLMInferencer: unknown task {task!r}; give a unit '
                         f'({", ".join(UNITS)}) or a task ({", ".join(TASKS)})')
    return task


def normalise_prompt(prompt: dict, index: int) -> dict:
    """A visual prompt in the record format (a mask array becomes compressed RLE).

    Raises:
        ValueError: an unknown prompt type or a malformed coordinate list.
    """
    kind, data = prompt.get('type'), prompt.get('data')
    if kind not in PROMPT_TYPES:
        raise ValueError(f'visual_prompts[{index}]: type {kind!r} is not one of {PROMPT_TYPES}')
    if kind == 'mask' and isinstance(data, np.ndarray):
        if data.ndim != 2 or not data.any():
            raise ValueError(f'visual_prompts[{index}]: a mask must be a non-empty [H, W] '
                             f'array, got shape {data.shape} with {int(data.sum())} pixels set')
        rle = mask_utils.encode(np.asfortranarray(data.astype(np.uint8)))
        return dict(type='mask', data=dict(size=list(rle['size']),
                                           counts=rle['counts'].decode('ascii')))
    expected = {'point': 2, 'box': 4}.get(kind)
    if expected is not None and len(data) != expected:
        raise ValueError(f'visual_prompts[{index}]: a {kind} takes {expected} numbers, got '
                         f'{list(data)}')
    if kind == 'scribble' and (len(data) < 1 or any(len(p) != 2 for p in data)):
        raise ValueError(f'visual_prompts[{index}]: a scribble is a list of [x, y] points, got '
                         f'{data!r}')
    return dict(type=kind, data=data)


def history_answer(text: str) -> Tuple[str, int]:
    """A generated answer as an earlier turn: ``(answer, number of <REF>)``, its ``<Task>``
    block dropped; an answer that does not parse is kept as its plain text."""
    try:
        triplets = parse_answer(text)
    except TRPParseError:
        return strip_tags(text), 0
    answer = text
    if text.lstrip().startswith('<Task>'):
        answer = text[text.index('</Task>') + len('</Task>'):].lstrip()
    return answer, sum(t.num_refs for t in triplets)


def build_record(request: Request, name: str) -> dict:
    """The pipeline input of ``request``: the image entry (``img_path`` or ``img``) and the
    record fields, the final answer left empty.

    Raises:
        ValueError: more ``<region>`` placeholders than visual prompts, or a bad prompt.
    """
    prompts = [normalise_prompt(p, i) for i, p in enumerate(request.visual_prompts)]
    questions = [question for question, _ in request.history] + [request.text]
    regions = sum(q.count(REGION) for q in questions)
    if regions > len(prompts):
        raise ValueError(f'REFVLMInferencer: the question has {regions} {REGION} placeholders '
                         f'but {len(prompts)} visual prompts were given')
    if regions < len(prompts):
        missing = len(prompts) - regions
        questions[-1] = f'{questions[-1]} ' + ', '.join([REGION] * missing)
    if IMAGE not in ''.join(questions):
        questions[0] = IMAGE + questions[0]
    conversations: List[dict] = []
    for question, (_, answer) in zip(questions, request.history):
        answer, num_refs = history_answer(answer)
        conversations += [dict(value=question, **{'from': 'human'}),
                          dict(value=answer, refs=list(range(num_refs)), **{'from': 'gpt'})]
    conversations += [dict(value=questions[-1], **{'from': 'human'}),
                      dict(value='', refs=[], **{'from': 'gpt'})]
    record = dict(task=resolve_task(request.task, bool(prompts)), conversations=conversations,
                  instances=[], prompts=prompts, depth_path=None, record_id=name, img_id=name)
    if isinstance(request.img, str):
        record['img_path'] = request.img
    else:
        record['img'] = request.img
    return record
