"""Parsing TRP answers: the paper's examples, malformed inputs and their offsets, strip_tags."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmrefvlm.trp import SPECIAL_TOKENS, Triplet, TRPParseError, parse_answer, strip_tags

CAPYBARAS = ('<Phrase>capybaras</Phrase>((<Unit> box</Unit>[0]<REF>[1]<REF>), '
             '<Unit>box </Unit>[1]<REF>)')


def _summary(triplets):
    return [(t.phrase, t.units, t.num_refs, t.ref_ordinals) for t in triplets]


def test_paper_capybara_example():
    triplets = parse_answer(CAPYBARAS)
    assert _summary(triplets) == [('capybaras', ('box', ), 2, (0, 1)),
                                  ('capybaras', ('box', ), 1, (2, ))]
    start, end = triplets[0].phrase_span
    assert CAPYBARAS[start:end] == 'capybaras'
    assert triplets[1].phrase_span == triplets[0].phrase_span


def test_paper_nested_example():
    text = '<Phrase><Phrase>dog</Phrase> in <Phrase>park</Phrase></Phrase>'
    assert parse_answer(text) == []  # phrases without unit groups yield no triplet
    grouped = ('<Phrase><Phrase>dog</Phrase> in <Phrase>park</Phrase></Phrase>'
               '(<Unit>box</Unit>[0]<REF>)')
    [triplet] = parse_answer(grouped)
    assert triplet == Triplet('dog in park', ('box', ), 1, (0, ), (8, grouped.index('</Phrase>(')))
    inner = ('<Phrase><Phrase>dog</Phrase>(<Unit>mask</Unit>[0]<REF>) in <Phrase>park</Phrase>'
             '(<Unit>mask</Unit>[0]<REF>)</Phrase>(<Unit>box</Unit>[0]<REF>)')
    assert _summary(parse_answer(inner)) == [('dog', ('mask', ), 1, (0, )),
                                             ('park', ('mask', ), 1, (1, )),
                                             ('dog in park', ('box', ), 1, (2, ))]


def test_paper_one_to_one_example():
    paper = ('There are two capybaras, <Phrase>a big one</Phrase>[0]<REF> and '
             '<Phrase>a small one</Phrase>[0]<REF>.')
    with pytest.raises(TRPParseError) as info:
        parse_answer(paper)  # as printed, the <REF>s have no unit group
    assert info.value.offset == paper.index('<REF>')
    text = ('There are two capybaras, <Phrase>a big one</Phrase>(<Unit>box</Unit>[0]<REF>) and '
            '<Phrase>a small one</Phrase>(<Unit>box</Unit>[0]<REF>).')
    assert _summary(parse_answer(text)) == [('a big one', ('box', ), 1, (0, )),
                                            ('a small one', ('box', ), 1, (1, ))]
    assert strip_tags(text) == 'There are two capybaras, a big one and a small one.'
    assert strip_tags(paper) == 'There are two capybaras, a big one and a small one.'


def test_paper_one_to_many_example():
    text = 'There are <Phrase>two capybaras</Phrase>(<Unit>box</Unit>[0]<REF>[1]<REF>).'
    assert _summary(parse_answer(text)) == [('two capybaras', ('box', ), 2, (0, 1))]
    assert strip_tags(text) == 'There are two capybaras.'


def test_composite_units_depth_unit_and_loose_syntax():
    text = ('<Task>\nUnit decode (True). Class name, target unit and number:\n'
            '- Name: person Unit: box, keypoint Num: 1\n</Task>\n'
            'I see <Phrase> a  person </Phrase> (<Unit> box ,keypoint</Unit> [ 3 ] <REF>) and '
            '<Phrase>floor</Phrase>(<Unit>depth</Unit>[-1]<REF>[7]<REF>[7]<REF>).')
    triplets = parse_answer(text)
    assert _summary(triplets) == [('a person', ('box', 'keypoint'), 1, (0, )),
                                  ('floor', ('depth', ), 3, (1, 2, 3))]
    assert text[slice(*triplets[0].phrase_span)] == ' a  person '


def test_unit_groups_as_parenthesised_items_and_plain_parentheses():
    text = ('<Phrase>cat</Phrase>((<Unit>box</Unit>[0]<REF>), (<Unit>mask</Unit>[0]<REF>)) '
            '(the grey one) <Phrase>rug</Phrase> (old)')
    assert _summary(parse_answer(text)) == [('cat', ('box', ), 1, (0, )),
                                            ('cat', ('mask', ), 1, (1, ))]
    assert strip_tags(text) == 'cat (the grey one) rug (old)'


def test_plain_text_only():
    assert parse_answer('') == []
    assert parse_answer('A man (left) holds [two] cups, 3 < 4.') == []
    assert parse_answer('<Task>\nUnit decode (False).\n</Task>\nJust text.') == []


def _at(text, needle, nth=1):
    index = -1
    for _ in range(nth):
        index = text.index(needle, index + 1)
    return index


MALFORMED = [
    ('<Phrase>dog', lambda t: 0, 'unclosed <Phrase>'),
    ('a <Phrase><Phrase>dog</Phrase>', lambda t: 2, 'unclosed <Phrase>'),
    ('dog</Phrase>', lambda t: 3, 'stray </Phrase>'),
    ('<Phrase>dog</Phrase></Phrase>', lambda t: 20, 'stray </Phrase>'),
    ('a </Unit>', lambda t: 2, 'stray </Unit>'),
    ('x <Unit>box</Unit>[0]<REF>', lambda t: 2, '<Unit> must follow a phrase'),
    ('<Phrase>dog</Phrase> and (<Unit>box</Unit>[0]<REF>)', lambda t: _at(t, '<Unit>'),
     '<Unit> must follow a phrase'),
    ('see [0]<REF>', lambda t: 7, '<REF> outside a unit group'),
    ('<Phrase>dog</Phrase>(<Unit>box</Unit>[0]<REF>) [1]<REF>', lambda t: _at(t, '<REF>', 2),
     '<REF> outside a unit group'),
    ('<Phrase> </Phrase>(<Unit>box</Unit>[0]<REF>)', lambda t: 0, 'empty phrase'),
    ('a <Phrase><Phrase></Phrase></Phrase>', lambda t: 10, 'empty phrase'),
    ('<Phrase>dog</Phrase>(<Unit> </Unit>[0]<REF>)', lambda t: _at(t, '<Unit>'), 'empty unit'),
    ('<Phrase>dog</Phrase>(<Unit>box,</Unit>[0]<REF>)', lambda t: _at(t, '<Unit>'), 'empty unit'),
    ('<Phrase>dog</Phrase>(<Unit>box</Unit>)', lambda t: _at(t, ')'), "no '\\[i\\]<REF>'"),
    ('<Phrase>dog</Phrase>(<Unit>box</Unit><REF>)', lambda t: _at(t, '<REF>'), 'without its'),
    ('<Phrase>dog</Phrase>(<Unit>box</Unit>[x]<REF>)', lambda t: _at(t, '['), 'not an integer'),
    ('<Phrase>dog</Phrase>(<Unit>box</Unit>[0]<REF>[1.5]<REF>)', lambda t: _at(t, '[1.'),
     'not an integer'),
    ('<Phrase>dog</Phrase>(<Unit>box</Unit>[0<REF>)', lambda t: _at(t, '['), "unclosed '\\['"),
    ('<Phrase>dog</Phrase>(<Unit>box</Unit>[0])', lambda t: _at(t, ')'), 'expected <REF>'),
    ('<Phrase>dog</Phrase>(<Unit>box[0]<REF>)', lambda t: _at(t, '<Unit>'), 'unclosed <Unit>'),
    ('<Phrase>dog</Phrase>(<Unit>box</Unit>[0]<REF>', len, "expected ',' or '\\)'"),
    ('<Phrase>dog</Phrase>(<Unit>box</Unit>[0]<REF>; <Unit>box</Unit>[0]<REF>)',
     lambda t: _at(t, ';'), "expected ',' or '\\)'"),
    ('<Phrase>dog</Phrase>((<Unit>box</Unit>[0]<REF>, <Unit>box</Unit>[0]<REF>)',
     lambda t: _at(t, ','), "expected '\\)' closing the unit group opened at character 21"),
    ('<Phrase>dog</Phrase>(<Unit>box</Unit>[0]<REF>, [1]<REF>)', lambda t: _at(t, '[1]'),
     'expected <Unit>'),
    ('a <Task>x</Task>', lambda t: 2, 'only allowed at the start'),
    ('<Task>\nUnit decode (False).\n', lambda t: 0, 'unclosed <Task>'),
    (' </Task> hi', lambda t: 1, 'stray </Task>'),
]


@pytest.mark.parametrize('text, offset_of, message', MALFORMED)
def test_malformed_inputs_raise_with_offset(text, offset_of, message):
    with pytest.raises(TRPParseError, match=message) as info:
        parse_answer(text)
    offset = offset_of(text)
    assert info.value.offset == offset
    assert f'at character {offset}' in str(info.value)
    assert isinstance(info.value, ValueError)


def test_strip_tags_examples():
    assert strip_tags('A <Phrase>dog</Phrase>(<Unit>box</Unit>[0]<REF>) runs.') == 'A dog runs.'
    assert strip_tags('<Task>\nUnit decode (True). Class name, target unit and number:\n'
                      '- Name: dog Unit: box Num: 1\n</Task>\n<Phrase>dog</Phrase>'
                      '(<Unit>box</Unit>[0]<REF>)') == 'dog'
    assert strip_tags(CAPYBARAS + ' swim.') == 'capybaras swim.'
    assert strip_tags('  many\n\n  spaces\t here ') == 'many spaces here'
    assert strip_tags('<Phrase>dog</Phrase> (cute)') == 'dog (cute)'
    # truncated generations still lose their tags and unit names
    assert strip_tags('a <Phrase>dog</Phrase>(<Unit>box</Unit>[0]<REF>[1]') == 'a dog([1]'
    assert strip_tags('a <Phrase>dog</Phrase>(<Unit>bo') == 'a dog('
    assert strip_tags('a <Task>\nUnit decode') == 'a'


_PIECES = SPECIAL_TOKENS[:7] + ('[0]', '(', ')', ', ', 'dog', ' ', '[x]')
_GARBAGE = st.lists(st.sampled_from(_PIECES), max_size=25).map(''.join)


@settings(max_examples=150, deadline=None, database=None)
@given(_GARBAGE)
def test_strip_tags_never_raises_and_leaves_no_tag(text):
    plain = strip_tags(text)
    assert not any(tag in plain for tag in SPECIAL_TOKENS[:7])
    assert plain == ' '.join(plain.split())
    try:
        parse_answer(text)
    except TRPParseError as error:  # the only exception the parser may raise
        assert 0 <= error.offset <= len(text)
