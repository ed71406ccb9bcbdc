"""Compose TRP strings: answer triplets, the VD-CoT block and the task command (DESIGN.md §2).

Every string the data pipeline trains on is built here, so that it parses back with
:func:`mmrefvlm.trp.parse_answer` into the triplets it was built from.
"""
from typing import Sequence, Union

from .parse import TRPParseError, parse_answer, strip_tags
from .tokens import SPECIAL_TOKENS

Units = Union[str, Sequence[str]]
TripletSpec = tuple[str, Units, int]

_TRP_TAGS = SPECIAL_TOKENS[:7]  # <Phrase> ... </Task>: the tags with a grammatical role
_UNIT_FORBIDDEN = '<>()[],\n'
_COT_FALSE = '<Task>\nUnit decode (False).\n</Task>\n'
_COT_TRUE_HEAD = '<Task>\nUnit decode (True). Class name, target unit and number:\n'


def compose_triplet(phrase: str, units: Units, num_refs: int) -> str:
    """One phrase with one unit group of ``num_refs`` references.

    ``compose_triplet('dog', 'box', 2)`` →
    ``'<Phrase>dog</Phrase>(<Unit>box</Unit>[0]<REF>[1]<REF>)'``; composite units
    (``['box', 'keypoint']``) are joined by ``', '``. ``phrase`` may itself hold well-formed TRP
    (nested phrases: ``'<Phrase>dog</Phrase> in <Phrase>park</Phrase>'``).

    Raises:
        ValueError: empty or malformed phrase, no unit, a unit that is empty or contains
            tags, commas, brackets or parentheses, or ``num_refs < 1``.
    """
    _check_phrase(phrase)
    unit_list = [units] if isinstance(units, str) else list(units)
    if not unit_list:
        raise ValueError(f'compose_triplet: no unit given for phrase {phrase!r}')
    for unit in unit_list:
        _check_unit(unit, f'compose_triplet (phrase {phrase!r})')
    _check_count(num_refs, f'compose_triplet (phrase {phrase!r}): num_refs')
    refs = ''.join(f'[{i}]<REF>' for i in range(num_refs))
    return f'<Phrase>{phrase}</Phrase>(<Unit>{", ".join(unit_list)}</Unit>{refs})'


def compose_answer(parts: Sequence[Union[str, TripletSpec]]) -> str:
    """Concatenate an answer: plain strings are copied, ``(phrase, units, num_refs)`` tuples
    are composed with :func:`compose_triplet`.

    Raises:
        ValueError: a part that is neither a str nor a 3-tuple, or an invalid triplet.
    """
    pieces = []
    for index, part in enumerate(parts):
        if isinstance(part, str):
            pieces.append(part)
        elif isinstance(part, (tuple, list)) and len(part) == 3:
            pieces.append(compose_triplet(*part))
        else:
            raise ValueError(f'compose_answer: part {index} must be a str or a '
                             f'(phrase, units, num_refs) tuple, got {part!r}')
    return ''.join(pieces)


def compose_cot(items: Sequence[tuple[str, str, int]]) -> str:
    """The VD-CoT block (paper §3.2): one ``- Name:`` line per ``(phrase, unit, num)`` item.

    ``[('dog', 'box', 2)]`` → ``'<Task>\\nUnit decode (True). Class name, target unit and
    number:\\n- Name: dog Unit: box Num: 2\\n</Task>\\n'``; no items →
    ``'<Task>\\nUnit decode (False).\\n</Task>\\n'``. ``unit`` may be composite
    (``'box, keypoint'``, as :func:`mmrefvlm.trp.cot_items` writes it).

    Raises:
        ValueError: an item that is not ``(non-empty phrase, non-empty unit, int >= 1)`` or
            whose text holds a newline or a TRP tag.
    """
    if not items:
        return _COT_FALSE
    lines = []
    for index, item in enumerate(items):
        where = f'compose_cot: item {index}'
        if not isinstance(item, (tuple, list)) or len(item) != 3:
            raise ValueError(f'{where} must be a (phrase, unit, num) tuple, got {item!r}')
        phrase, unit, num = item
        _check_line_text(phrase, f'{where} phrase')
        _check_line_text(unit, f'{where} unit')
        _check_count(num, f'{where} num')
        lines.append(f'- Name: {phrase} Unit: {unit} Num: {num}\n')
    return _COT_TRUE_HEAD + ''.join(lines) + '</Task>\n'


def compose_task_command(task: str, elements: Sequence[str], unit: str | None) -> str:
    """The task command of a turn's system part.

    ``compose_task_command('referring expression comprehension', ['phrase', 'unit'], 'box')`` →
    ``'Task Command:\\n- task name: referring expression comprehension\\n- answer element:
    phrase, unit\\n- unit: box\\n'``; ``unit=None`` writes ``'- unit: none'``.

    Args:
        task: the task name written into the command (``TaskSpec.description``).
        elements: the answer elements (``TaskSpec.elements``), at least one.
        unit: the visual unit, or ``None`` for text-only answers.

    Raises:
        ValueError: an empty task name, no elements, or a field that is empty, holds a
            newline or a TRP tag (elements also no comma).
    """
    _check_line_text(task, 'compose_task_command: task')
    if isinstance(elements, str) or not elements:
        raise ValueError('compose_task_command: elements must be a non-empty sequence of str, '
                         f'got {elements!r}')
    for element in elements:
        _check_line_text(element, 'compose_task_command: element')
        if ',' in element:
            raise ValueError(f'compose_task_command: element {element!r} contains a comma')
    if unit is not None:
        _check_line_text(unit, 'compose_task_command: unit')
    return (f'Task Command:\n- task name: {task}\n- answer element: {", ".join(elements)}\n'
            f'- unit: {unit or "none"}\n')


def _check_phrase(phrase: str) -> None:
    if not isinstance(phrase, str):
        raise ValueError(f'compose_triplet: phrase must be a str, got {phrase!r}')
    if any(tag in phrase for tag in _TRP_TAGS):
        try:
            parse_answer(phrase)
        except TRPParseError as error:
            raise ValueError(f'compose_triplet: phrase {phrase!r} is not well-formed TRP: '
                             f'{error}') from None
        if '<Task>' in phrase:
            raise ValueError(f'compose_triplet: phrase {phrase!r} contains a <Task> block')
    if not strip_tags(phrase):
        raise ValueError(f'compose_triplet: empty phrase {phrase!r}')


def _check_unit(unit: str, where: str) -> None:
    if not isinstance(unit, str) or not unit.strip():
        raise ValueError(f'{where}: empty unit {unit!r}')
    bad = sorted(set(unit) & set(_UNIT_FORBIDDEN))
    if bad:
        raise ValueError(f'{where}: unit {unit!r} contains {bad}; a unit is a plain name such as '
                         "'box' (pass composite units as a list: ['box', 'keypoint'])")
    if unit != unit.strip():
        raise ValueError(f'{where}: unit {unit!r} has leading or trailing whitespace')


def _check_line_text(value: str, where: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f'{where} must be a non-empty str, got {value!r}')
    if '\n' in value or any(tag in value for tag in _TRP_TAGS):
        raise ValueError(f'{where} {value!r} must not contain a newline or a TRP tag')


def _check_count(value: int, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'{where} must be an int >= 1, got {value!r}')
