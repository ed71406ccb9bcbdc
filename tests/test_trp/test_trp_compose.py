"""Composing TRP strings: exact formats and input validation."""
import pytest

from mmrefvlm.trp import (compose_answer, compose_cot, compose_task_command, compose_triplet,
                          cot_items, parse_answer)


def test_compose_triplet_exact():
    assert compose_triplet('dog', 'box', 2) == \
        '<Phrase>dog</Phrase>(<Unit>box</Unit>[0]<REF>[1]<REF>)'
    assert compose_triplet('person', ['box', 'keypoint'], 1) == \
        '<Phrase>person</Phrase>(<Unit>box, keypoint</Unit>[0]<REF>)'
    nested = compose_triplet('<Phrase>dog</Phrase> in <Phrase>park</Phrase>', 'mask', 1)
    assert nested == '<Phrase><Phrase>dog</Phrase> in <Phrase>park</Phrase></Phrase>' \
                     '(<Unit>mask</Unit>[0]<REF>)'


def test_compose_answer_copies_text_and_composes_tuples():
    answer = compose_answer(['A ', ('dog', 'box', 1), ' chases ', ('two cats', 'mask', 2), '.'])
    assert answer == ('A <Phrase>dog</Phrase>(<Unit>box</Unit>[0]<REF>) chases '
                      '<Phrase>two cats</Phrase>(<Unit>mask</Unit>[0]<REF>[1]<REF>).')
    assert compose_answer([]) == ''
    with pytest.raises(ValueError, match='part 1'):
        compose_answer(['x', ('dog', 'box')])


def test_compose_cot_exact():
    assert compose_cot([('dog', 'box', 2), ('person', 'box, keypoint', 1)]) == (
        '<Task>\nUnit decode (True). Class name, target unit and number:\n'
        '- Name: dog Unit: box Num: 2\n- Name: person Unit: box, keypoint Num: 1\n</Task>\n')
    assert compose_cot([]) == '<Task>\nUnit decode (False).\n</Task>\n'


def test_cot_items_feed_compose_cot():
    answer = compose_answer([('dog', 'box', 2), ' and ', ('person', ['box', 'keypoint'], 1)])
    items = cot_items(parse_answer(answer))
    assert items == [('dog', 'box', 2), ('person', 'box, keypoint', 1)]
    assert compose_cot(items) == ('<Task>\nUnit decode (True). Class name, target unit and number:'
                                  '\n- Name: dog Unit: box Num: 2\n'
                                  '- Name: person Unit: box, keypoint Num: 1\n</Task>\n')
    assert cot_items(parse_answer('no grounding here')) == []
    # the CoT block in front of the answer is skipped by the parser
    assert cot_items(parse_answer(compose_cot(items) + answer)) == items


def test_compose_task_command_exact():
    assert compose_task_command('referring expression comprehension', ('phrase', 'unit'),
                                'box') == (
        'Task Command:\n- task name: referring expression comprehension\n'
        '- answer element: phrase, unit\n- unit: box\n')
    assert compose_task_command('image caption', ['sentence'], None) == (
        'Task Command:\n- task name: image caption\n- answer element: sentence\n- unit: none\n')


@pytest.mark.parametrize('phrase, units, num_refs, message', [
    ('', 'box', 1, 'empty phrase'),
    ('   ', 'box', 1, 'empty phrase'),
    ('<Phrase></Phrase>', 'box', 1, 'not well-formed'),
    ('dog</Phrase>', 'box', 1, 'not well-formed'),
    ('dog', 'box', 0, 'num_refs'),
    ('dog', 'box', -1, 'num_refs'),
    ('dog', 'box', True, 'num_refs'),
    ('dog', 'box', 1.0, 'num_refs'),
    ('dog', '', 1, 'empty unit'),
    ('dog', [], 1, 'no unit'),
    ('dog', 'box, mask', 1, 'contains'),
    ('dog', '<Unit>box', 1, 'contains'),
    ('dog', 'box(1)', 1, 'contains'),
    ('dog', ['box', 'mask]'], 1, 'contains'),
    ('dog', ' box', 1, 'whitespace'),
])
def test_compose_triplet_rejects(phrase, units, num_refs, message):
    with pytest.raises(ValueError, match=message):
        compose_triplet(phrase, units, num_refs)


@pytest.mark.parametrize('items', [
    [('', 'box', 1)], [('dog', '', 1)], [('dog', 'box', 0)], [('dog\ncat', 'box', 1)],
    [('<Phrase>dog</Phrase>', 'box', 1)], [('dog', 'box')],
])
def test_compose_cot_rejects(items):
    with pytest.raises(ValueError, match='compose_cot: item 0'):
        compose_cot(items)


@pytest.mark.parametrize('task, elements, unit', [
    ('', ['phrase'], 'box'), ('rec', [], 'box'), ('rec', 'phrase', 'box'),
    ('rec', ['phrase, unit'], 'box'), ('rec', ['phrase'], 'bo\nx'), ('rec\n', ['phrase'], None),
])
def test_compose_task_command_rejects(task, elements, unit):
    with pytest.raises(ValueError, match='compose_task_command'):
        compose_task_command(task, elements, unit)
