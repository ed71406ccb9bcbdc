"""Pieces every task renderer shares: image info, template filling, record assembly, turns.

A renderer turns annotations of one image into one VT-Instruct record (``docs/internals.md`` §2):
it picks a human-prompt template from its task's bank, builds the answer with
:func:`mmrefvlm.trp.compose_answer` and lists, in ``<REF>`` order, the instance behind every
``<REF>``. The VD-CoT block and the task command are never written here: the pipeline derives
them from the answer and from ``TASKS[task]``.
"""
import copy
import random
import re
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence

from mmrefvlm.trp import SPECIAL_TOKENS, compose_answer

from ..tasks import get_task

# Tags a human turn must never carry (only the placeholders ``<image>``/``<region>`` may appear).
_FORBIDDEN_HUMAN_TAGS = tuple(tok for tok in SPECIAL_TOKENS if tok not in ('<image>', '<region>'))


@dataclass(frozen=True)
class ImageInfo:
    """The image a record is about.

    Args:
        id: image id, unique within the dataset (used to build record ids).
        path: image path relative to the image root (written to the record's ``image``).
        width: image width in pixels.
        height: image height in pixels.
    """
    id: str
    path: str
    width: int
    height: int


def with_article(noun: str) -> str:
    """Return ``noun`` preceded by 'a' or 'an' (by its first letter), e.g. 'an orange circle'."""
    return ('an ' if noun[:1].lower() in 'aeiou' else 'a ') + noun


def pick_template(task: str, templates: Sequence[str], rng: random.Random, **fields: str) -> str:
    """Draw one template of ``task`` with ``rng`` and fill its ``{field}`` slots.

    Raises ``ValueError`` when a filled value carries a TRP tag (human turns must not).
    """
    for name, value in fields.items():
        check_plain_text(value, f'{task} template field {name!r}')
    return rng.choice(templates).format(**fields)


def check_plain_text(text: str, where: str) -> None:
    """Raise ``ValueError`` if ``text`` contains a TRP tag or a placeholder token."""
    for tag in SPECIAL_TOKENS:
        if tag in text:
            raise ValueError(f'{where}: {text!r} contains the special token {tag}')


def regions_text(num_prompts: int) -> str:
    """The text standing for ``num_prompts`` visual prompts: '<region>, <region> and <region>'."""
    if num_prompts < 1:
        raise ValueError(f'need at least one visual prompt, got {num_prompts}')
    regions = ['<region>'] * num_prompts
    return regions[0] if num_prompts == 1 else ', '.join(regions[:-1]) + ' and ' + regions[-1]


def build_record(task: str,
                 image: ImageInfo,
                 instances: Sequence[Mapping],
                 human: str,
                 answer: str,
                 refs: Sequence[int] = (),
                 prompts: Sequence[Mapping] = (),
                 record_id: Optional[str] = None,
                 classes: Optional[Sequence[str]] = None,
                 depth: Optional[str] = None) -> Dict:
    """Assemble a one-turn record; the layout is ``docs/internals.md`` §2.

    Args:
        task: a key of ``TASKS``.
        image: the image the record is about.
        instances: COCO-style instance dicts (``bbox`` xywh absolute pixels, optional
            ``segmentation``/``keypoints``/``depth``, ``category``); copied into the record.
        human: the human turn (contains ``<image>`` once and one ``<region>`` per prompt).
        answer: the gpt turn, a TRP string.
        refs: index into ``instances`` of each ``<REF>`` of ``answer``, in order.
        prompts: visual prompts consumed by the ``<region>`` placeholders, in order.
        record_id: the record's id; defaults to ``'{image.id}_{task}'``.
        classes: class names offered in the prompt (OVD/OVS).
        depth: path of the 16-bit depth PNG (metres × 1000) relative to the image root.

    Returns:
        The record dict.
    """
    get_task(task)
    _check_turn(task, human, answer, refs, len(instances), prompts)
    gpt = {'from': 'gpt', 'value': answer}
    if refs:
        gpt['refs'] = [int(i) for i in refs]
    record = {
        'id': record_id if record_id is not None else f'{image.id}_{task}',
        'task': task,
        'image': image.path,
        'width': int(image.width),
        'height': int(image.height),
        'instances': [copy.deepcopy(dict(inst)) for inst in instances],
        'prompts': [copy.deepcopy(dict(p)) for p in prompts],
    }
    if depth is not None:
        record['depth'] = depth
    if classes is not None:
        record['classes'] = list(classes)
    record['conversations'] = [{'from': 'human', 'value': human}, gpt]
    return record


def _check_turn(task: str, human: str, answer: str, refs: Sequence[int], num_instances: int,
                prompts: Sequence[Mapping]) -> None:
    """Raise ``ValueError`` naming the field when a turn breaks the record contract."""
    for tag in _FORBIDDEN_HUMAN_TAGS:
        if tag in human:
            raise ValueError(f'{task}: human turn {human!r} contains {tag}')
    if human.count('<region>') != len(prompts):
        raise ValueError(f'{task}: human turn has {human.count("<region>")} <region> '
                         f'but {len(prompts)} prompts are given')
    if answer.count('<REF>') != len(refs):
        raise ValueError(f'{task}: answer has {answer.count("<REF>")} <REF> tokens '
                         f'but refs has {len(refs)} entries')
    for index in refs:
        if not 0 <= index < num_instances:
            raise ValueError(f'{task}: ref {index} is not an index into {num_instances} instances')


def strip_image_placeholder(text: str) -> str:
    """Remove ``<image>`` from a human prompt and tidy the spacing it leaves.

    Follow-up turns reuse the first-turn templates: 'What is X in the image <image>?' becomes
    'What is X in the image?'.
    """
    text = text.replace('<image>', ' ')
    text = re.sub(r'\s+([?.,!:;])', r'\1', text)
    text = re.sub(r'[ \t]{2,}', ' ', text)
    return text.strip()


def add_turns(record: Dict, *followups: Mapping) -> Dict:
    """Append the turns of ``followups`` to ``record`` as further (human, gpt) turns.

    Every follow-up is a record rendered on the same image, task and instance list (so its
    ``refs`` index the same instances); its human turns lose their ``<image>`` placeholder and
    its prompts are appended after ``record``'s, matching the ``<region>`` order of the turns.
    ``record`` is updated in place and returned.

    Raises:
        ValueError: when a follow-up has another image, task or instance list.
    """
    for followup in followups:
        for key in ('image', 'task', 'instances'):
            if followup[key] != record[key]:
                raise ValueError(f'add_turns: follow-up {followup["id"]!r} has another {key!r} '
                                 f'than record {record["id"]!r}')
        for turn in followup['conversations']:
            turn = copy.deepcopy(dict(turn))
            if turn['from'] == 'human':
                turn['value'] = strip_image_placeholder(turn['value'])
            record['conversations'].append(turn)
        record['prompts'].extend(copy.deepcopy(list(followup.get('prompts', []))))
    return record


def group_by_category(instances: Sequence[Mapping],
                      indices: Sequence[int],
                      order: Optional[Sequence[str]] = None) -> List[tuple]:
    """Group instance indices by category, in a deterministic order.

    Args:
        instances: instance dicts with a ``category``.
        indices: which instances to group (their list order is kept inside a group).
        order: category order; categories absent from ``instances`` are skipped. Defaults to
            the sorted category names.

    Returns:
        ``[(category, [index, ...]), ...]``.
    """
    groups: Dict[str, List[int]] = {}
    for index in indices:
        groups.setdefault(instances[index]['category'], []).append(index)
    names = sorted(groups) if order is None else [name for name in order if name in groups]
    return [(name, groups[name]) for name in names]


def detection_answer(instances: Sequence[Mapping],
                     indices: Sequence[int],
                     unit: str,
                     order: Optional[Sequence[str]] = None) -> tuple:
    """Answer listing ``indices`` grouped per category: one triplet per category.

    Returns:
        ``(answer, refs)``: ``'<Phrase>dog</Phrase>(<Unit>box</Unit>[0]<REF>[1]<REF>), ...'`` and
        the instance index of each ``<REF>`` in order.
    """
    parts: List = []
    refs: List[int] = []
    for name, members in group_by_category(instances, indices, order):
        if parts:
            parts.append(', ')
        parts.append((name, unit, len(members)))
        refs.extend(members)
    return compose_answer(parts), refs
