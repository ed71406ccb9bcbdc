"""Render a record's conversation as the LLM's text (Vicuna v1.1 turns + task command + VD-CoT).

The text of a record with turns (h1, g1), (h2, g2) reads::

    {system}\n{task command}USER: {h1} ASSISTANT: {cot1}{g1}</s>USER: {h2} ASSISTANT: {cot2}{g2}</s>

(the task command of ``mmrefvlm.trp.compose_task_command`` ends with a newline), where ``cot``
is the VD-CoT block derived from the answer (paper §3.2): the True block listing
``(phrase, unit, num)`` of every triplet for tasks that decode a unit, the False block for
text-only tasks. Every ``<image>`` of a human turn is expanded to ``image_token_len`` copies and
every ``<region>`` to ``region_token_len`` copies: the neck overwrites those embeddings.

The text is kept as segments so the tokenizer can label exactly the assistant answers
(``{cot}{answer}</s>``) for training and nothing else.
"""
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

from mmcv.transforms import BaseTransform

from mmrefvlm.datasets.tasks import get_task
from mmrefvlm.registry import TRANSFORMS
from mmrefvlm.trp import (TRPParseError, compose_cot, compose_task_command, cot_items,
                          parse_answer, replace_unit_groups)

DEFAULT_SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. "
                  "The assistant gives helpful, detailed, and polite answers to the user's "
                  "questions.")
USER_PREFIX = 'USER: '
ASSISTANT_PREFIX = ' ASSISTANT: '
# The end of an assistant turn. ``TokenizeConversation`` maps this segment to the tokenizer's
# own end-of-sequence id, so the text stays tokenizer-independent.
END_OF_TURN = '</s>'
IMAGE_TOKEN = '<image>'
REGION_TOKEN = '<region>'


@dataclass(frozen=True)
class Segment:
    """A span of the rendered text.

    Args:
        text: the span.
        trained: the span is an assistant answer (CoT, answer or ``</s>``) whose tokens are
            supervised.
        turn: index of the (human, gpt) round it belongs to; -1 for the system part.
    """
    text: str
    trained: bool
    turn: int


@dataclass
class RenderedConversation:
    """A rendered conversation with its targets.

    Args:
        segments: the text, in order.
        target_indices: record instance index of every target ``<REF>``, in ``<REF>`` order.
        target_group_ids: triplet index (in answer order) of each target.
        target_turns: round index of each target.
        prompt_turns: round index of each ``<region>`` prompt, in prompt order.
        gt_answer: the held-out final answer (test mode), else ``None``.
    """
    segments: List[Segment] = field(default_factory=list)
    target_indices: List[int] = field(default_factory=list)
    target_group_ids: List[int] = field(default_factory=list)
    target_turns: List[int] = field(default_factory=list)
    prompt_turns: List[int] = field(default_factory=list)
    gt_answer: Optional[str] = None

    @property
    def text(self) -> str:
        return ''.join(segment.text for segment in self.segments)


def expand_placeholders(text: str, image_token_len: int, region_token_len: int) -> str:
    """Repeat every ``<image>`` ``image_token_len`` times and every ``<region>``
    ``region_token_len`` times."""
    return (text.replace(IMAGE_TOKEN, IMAGE_TOKEN * image_token_len)
            .replace(REGION_TOKEN, REGION_TOKEN * region_token_len))


def answer_cot(answer: str, decodes_unit: bool) -> str:
    """The VD-CoT block for ``answer``: its triplets for a unit task, the False block else."""
    return compose_cot(cot_items(parse_answer(answer)) if decodes_unit else [])


def _answer_targets(answer: str, refs: Sequence[int],
                    first_group: int) -> Tuple[List[int], List[int], int]:
    """Instance index and group id of each ``<REF>`` of ``answer`` (in ``<REF>`` order).

    Returns:
        ``(indices, group_ids, num_triplets)``.
    """
    triplets = parse_answer(answer)
    group_of_ref = {}
    for group, triplet in enumerate(triplets):
        for ordinal in triplet.ref_ordinals:
            group_of_ref[ordinal] = first_group + group
    if len(group_of_ref) != len(refs):
        raise ValueError(f"'refs' has {len(refs)} entries but the answer has "
                         f'{len(group_of_ref)} <REF> tokens')
    indices = [int(refs[ordinal]) for ordinal in range(len(refs))]
    groups = [group_of_ref[ordinal] for ordinal in range(len(refs))]
    return indices, groups, len(triplets)


def boxes_as_text(answer: str, refs: Sequence[int], boxes: Sequence[Sequence[float]],
                  width: int, height: int) -> str:
    """Stage 1's answers (paper App. D, Shikra's setup): every unit group written as the boxes
    of its targets, ``[x1,y1,x2,y2]`` normalised to ``[0, 1]`` with 3 decimals, joined by
    ``;``: ``'<Phrase>dog</Phrase>(<Unit>box</Unit>[0]<REF>)'`` →
    ``'<Phrase>dog</Phrase>[0.062,0.125,0.375,0.458]'``.

    Args:
        answer: a TRP answer.
        refs: instance index of each ``<REF>`` of ``answer``, in order.
        boxes: ``[x, y, w, h]`` of every instance, absolute pixels of the original image.
        width, height: the original image's size.
    """

    def _box_text(ordinals: Tuple[int, ...]) -> str:
        texts = []
        for ordinal in ordinals:
            x, y, w, h = boxes[refs[ordinal]]
            corners = (x / width, y / height, (x + w) / width, (y + h) / height)
            texts.append('[' + ','.join(f'{min(max(v, 0.0), 1.0):.3f}' for v in corners) + ']')
        return ';'.join(texts)

    return replace_unit_groups(answer, _box_text)


def _numeric_conversations(conversations: Sequence[dict], instances: Sequence[dict],
                           width: int, height: int) -> List[dict]:
    """The gpt turns with their targets written as box numbers and no ``refs`` left."""
    boxes = [instance.get('bbox') for instance in instances]
    out = []
    for turn in conversations:
        if turn.get('from') == 'gpt' and turn.get('refs'):
            refs = turn['refs']
            missing = [i for i in refs if boxes[i] is None]
            if missing:
                raise ValueError(f'boxes_as_text: instances {missing} have no bbox')
            turn = dict(turn, value=boxes_as_text(turn['value'], refs, boxes, width, height),
                        refs=[])
        out.append(turn)
    return out


def render_conversation(task: str,
                        conversations: Sequence[dict],
                        system: str = DEFAULT_SYSTEM,
                        image_token_len: int = 1,
                        region_token_len: int = 1,
                        test_mode: bool = False,
                        vd_cot: bool = True) -> RenderedConversation:
    """Render ``conversations`` (alternating human/gpt dicts of a record) of task ``task``.

    Each trained answer is preceded by its VD-CoT block (paper §3.2) unless ``vd_cot`` is off
    (the paper's ablation without it).

    In test mode the final gpt turn is held out: the text stops right after its
    ``ASSISTANT:`` prefix, it becomes ``gt_answer`` and only its ``<REF>`` targets are listed
    (group ids counted within it); no segment is trained.

    Raises:
        ValueError: turns do not alternate human/gpt, an answer does not parse, or ``refs``
            disagrees with the answer's ``<REF>`` count.
    """
    spec = get_task(task)
    rounds = _pair_turns(conversations)
    command = compose_task_command(spec.description, spec.elements, spec.unit)
    out = RenderedConversation(segments=[Segment(f'{system}\n{command}', False, -1)])
    num_groups = 0
    for turn, (human, gpt) in enumerate(rounds):
        held_out = test_mode and turn == len(rounds) - 1
        question = expand_placeholders(human['value'], image_token_len, region_token_len)
        out.segments.append(Segment(USER_PREFIX + question + ASSISTANT_PREFIX, False, turn))
        out.prompt_turns.extend([turn] * human['value'].count(REGION_TOKEN))
        answer = gpt['value']
        try:
            indices, groups, count = _answer_targets(answer, gpt.get('refs') or [],
                                                     0 if held_out else num_groups)
            cot = answer_cot(answer, spec.unit is not None) if vd_cot else ''
        except (TRPParseError, ValueError) as error:
            raise ValueError(f'conversations[{2 * turn + 1}]: {error}') from error
        if held_out:
            out.gt_answer = answer
            out.target_indices, out.target_group_ids = indices, groups
            out.target_turns = [turn] * len(indices)
            break
        out.segments.append(Segment(cot + answer, not test_mode, turn))
        out.segments.append(Segment(END_OF_TURN, not test_mode, turn))
        if not test_mode:
            out.target_indices.extend(indices)
            out.target_group_ids.extend(groups)
            out.target_turns.extend([turn] * len(indices))
        num_groups += count
    return out


def _pair_turns(conversations: Sequence[dict]) -> List[Tuple[dict, dict]]:
    """Group alternating turns into (human, gpt) rounds."""
    if not conversations or len(conversations) % 2:
        raise ValueError(f'conversations must hold (human, gpt) pairs, got '
                         f'{len(conversations)} turns')
    rounds = []
    for i in range(0, len(conversations), 2):
        human, gpt = conversations[i], conversations[i + 1]
        if human.get('from') != 'human' or gpt.get('from') != 'gpt':
            raise ValueError(f'conversations[{i}:{i + 2}] must be a human then a gpt turn, got '
                             f"{human.get('from')!r}, {gpt.get('from')!r}")
        rounds.append((human, gpt))
    return rounds


@TRANSFORMS.register_module()
class RenderConversation(BaseTransform):
    """Render the record's conversation into text segments and list its targets.

    Required keys: ``task``, ``conversations``, ``record_id`` (for error messages).

    Added keys: ``text_segments`` (``list[Segment]``), ``target_indices``,
    ``target_group_ids``, ``target_turns``, ``prompt_turns`` (see
    :class:`RenderedConversation`), and ``gt_answer`` in test mode.

    Args:
        system: the system prompt; the task command of ``TASKS[task]`` follows it.
        image_token_len: copies of ``<image>`` per image placeholder (= global tokens).
        region_token_len: copies of ``<region>`` per visual prompt.
        test_mode: hold out the final answer (see :func:`render_conversation`).
        vd_cot: precede each trained answer with its VD-CoT block (paper §3.2); off for the
            paper's ablation without it.
        boxes_as_text: write every answer's targets as box numbers in the text instead of
            ``<REF>`` unit groups (stage 1, see :func:`boxes_as_text`; needs the record's
            ``instances``, ``width`` and ``height``): no target is listed, nothing is decoded.
    """

    def __init__(self, system: str = DEFAULT_SYSTEM, image_token_len: int = 1,
                 region_token_len: int = 1, test_mode: bool = False,
                 vd_cot: bool = True, boxes_as_text: bool = False) -> None:
        self.system = system
        self.image_token_len = image_token_len
        self.region_token_len = region_token_len
        self.test_mode = test_mode
        self.vd_cot = vd_cot
        self.boxes_as_text = boxes_as_text

    def transform(self, results: dict) -> dict:
        try:
            conversations = results['conversations']
            if self.boxes_as_text:
                conversations = _numeric_conversations(conversations, results['instances'],
                                                       results['width'], results['height'])
            rendered = render_conversation(results['task'], conversations,
                                           self.system, self.image_token_len,
                                           self.region_token_len, self.test_mode, self.vd_cot)
        except ValueError as error:
            raise ValueError(f"RenderConversation: record {results.get('record_id')!r}: "
                             f'{error}') from error
        results['text_segments'] = rendered.segments
        results['target_indices'] = rendered.target_indices
        results['target_group_ids'] = rendered.target_group_ids
        results['target_turns'] = rendered.target_turns
        results['prompt_turns'] = rendered.prompt_turns
        if self.test_mode:
            results['gt_answer'] = rendered.gt_answer
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(image_token_len={self.image_token_len}, '
                f'region_token_len={self.region_token_len}, test_mode={self.test_mode}, '
                f'boxes_as_text={self.boxes_as_text})')
