"""The router's token-level scanner: agreement with parse_answer and tolerance to garbage."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmrefvlm.trp import (TokenTriplet, compose_answer, compose_cot, cot_items, parse_answer,
                          parse_ref_tokens)

WELL_FORMED = [
    '<Phrase>capybaras</Phrase>((<Unit> box</Unit>[0]<REF>[1]<REF>), <Unit>box </Unit>[1]<REF>)',
    '<Phrase><Phrase>dog</Phrase>(<Unit>mask</Unit>[0]<REF>) in <Phrase>park</Phrase>'
    '</Phrase>(<Unit>box, keypoint</Unit>[0]<REF>[1]<REF>). Done.',
    'There are two capybaras, <Phrase>a big one</Phrase>(<Unit>box</Unit>[0]<REF>) and '
    '<Phrase>a small one</Phrase>(<Unit>box</Unit>[0]<REF>).',
    'I see <Phrase> a  person </Phrase> (<Unit> box ,keypoint</Unit> [ 3 ] <REF>), '
    '<Phrase>the (left) cat</Phrase>((<Unit>mask</Unit>[0]<REF>), (<Unit>box</Unit>[0]<REF>)) '
    '(grey) and <Phrase>rug</Phrase> [old].',
]


def _encode(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)['input_ids']


def _scan(trp_tokenizer, token_ids):
    _, special_ids, decode = trp_tokenizer
    return parse_ref_tokens(token_ids, special_ids, decode)


@pytest.mark.parametrize('body', WELL_FORMED)
def test_agrees_with_parse_answer(trp_tokenizer, body):
    tokenizer, special_ids, _ = trp_tokenizer
    text = compose_cot(cot_items(parse_answer(body))) + body
    token_ids = _encode(tokenizer, text)
    ref_positions = [i for i, t in enumerate(token_ids) if t == special_ids['<REF>']]
    expected = [TokenTriplet(t.phrase, t.units, tuple(ref_positions[o] for o in t.ref_ordinals))
                for t in parse_answer(text)]
    assert _scan(trp_tokenizer, token_ids) == expected
    assert len(expected) >= 2


def test_capybara_positions(trp_tokenizer):
    tokenizer, special_ids, _ = trp_tokenizer
    token_ids = _encode(tokenizer, WELL_FORMED[0])
    refs = [i for i, t in enumerate(token_ids) if t == special_ids['<REF>']]
    assert _scan(trp_tokenizer, token_ids) == [
        TokenTriplet('capybaras', ('box', ), (refs[0], refs[1])),
        TokenTriplet('capybaras', ('box', ), (refs[2], ))]


def test_accepts_tensors_and_ignores_the_cot_block(trp_tokenizer):
    tokenizer, _, _ = trp_tokenizer
    # a CoT block that (wrongly) holds TRP tags must not produce triplets
    text = ('<Task><Phrase>x</Phrase>(<Unit>box</Unit>[0]<REF>)</Task>'
            '<Phrase>dog</Phrase>(<Unit>box</Unit>[0]<REF>)')
    token_ids = torch.tensor(_encode(tokenizer, text))
    [triplet] = _scan(trp_tokenizer, token_ids)
    assert triplet.phrase == 'dog' and triplet.ref_positions == (len(token_ids) - 2, )


@pytest.mark.parametrize('text, expected', [
    # <REF>s with no unit group (the paper's one-to-one example as printed) are dropped
    ('<Phrase>a big one</Phrase>[0]<REF> and <Phrase>a small one</Phrase>[0]<REF>.', []),
    # a unit that does not follow a phrase is dropped, with its <REF>s
    ('hello (<Unit>box</Unit>[0]<REF>) <Phrase>dog</Phrase>(<Unit>mask</Unit>[0]<REF>)',
     [('dog', ('mask', ), 1)]),
    # a group with an empty unit or without <REF> is dropped; the next one of the phrase kept
    ('<Phrase>dog</Phrase>((<Unit> , </Unit>[0]<REF>), (<Unit>box</Unit>), '
     '(<Unit>mask</Unit>[0]<REF>[1]<REF>))', [('dog', ('mask', ), 2)]),
    # truncated, unclosed and stray tags
    ('</Phrase></Unit><REF><Phrase>cat</Phrase>(<Unit>box</Unit>[0]<REF>[1',
     [('cat', ('box', ), 1)]),
    ('<Phrase>cat</Phrase>(<Unit>box<REF>)', []),
    ('<Phrase>cat</Phrase> is here (<Unit>box</Unit>[0]<REF>)', []),
    ('<Phrase>cat</Phrase>(<Unit>box</Unit>[0]<REF>) then [1]<REF>', [('cat', ('box', ), 1)]),
    ('<Phrase></Phrase>(<Unit>box</Unit>[0]<REF>)', [('', ('box', ), 1)]),
    ('<Phrase>cat</Phrase>(<Unit>box</Unit><REF><REF>)', [('cat', ('box', ), 2)]),
    ('<Task>\nUnit decode (True).\n<Phrase>cat</Phrase>(<Unit>box</Unit>[0]<REF>)', []),
])
def test_tolerates_malformed_generations(trp_tokenizer, text, expected):
    tokenizer, _, _ = trp_tokenizer
    found = _scan(trp_tokenizer, _encode(tokenizer, text))
    assert [(t.phrase, t.units, len(t.ref_positions)) for t in found] == expected


def test_missing_special_ids_is_an_error(trp_tokenizer):
    _, special_ids, decode = trp_tokenizer
    ids = {k: v for k, v in special_ids.items() if k != '<Unit>'}
    with pytest.raises(ValueError, match='<Unit>'):
        parse_ref_tokens([1, 2, 3], ids, decode)


_ANSWER = compose_answer(['A ', ('dog', 'box', 2), ' and ', ('cat', ['box', 'mask'], 3),
                          ' near ', ('<Phrase>a tree</Phrase> in <Phrase>a park</Phrase>',
                                     'mask', 1), '.'])


@settings(max_examples=60, deadline=None, database=None)
@given(st.data())
def test_truncated_answers_give_the_refs_generated_so_far(trp_tokenizer, data):
    tokenizer, _, _ = trp_tokenizer
    token_ids = _encode(tokenizer, _ANSWER)
    full = _scan(trp_tokenizer, token_ids)
    assert [t.phrase for t in full] == ['dog', 'cat', 'a tree in a park']
    cut = data.draw(st.integers(0, len(token_ids)))
    expected = [TokenTriplet(t.phrase, t.units, tuple(p for p in t.ref_positions if p < cut))
                for t in full if t.ref_positions[0] < cut]
    assert _scan(trp_tokenizer, token_ids[:cut]) == expected


@settings(max_examples=150, deadline=None, database=None)
@given(st.data())
def test_never_raises_on_garbage(trp_tokenizer, data):
    tokenizer, special_ids, _ = trp_tokenizer
    vocabulary = list(special_ids.values()) + _encode(tokenizer, '([0], ) dog box, mask') + [0, 5]
    token_ids = data.draw(st.lists(st.sampled_from(vocabulary), max_size=40))
    triplets = _scan(trp_tokenizer, token_ids)
    positions = [p for t in triplets for p in t.ref_positions]
    assert positions == sorted(set(positions))
    assert all(token_ids[p] == special_ids['<REF>'] for p in positions)
    assert all(t.units and all(t.units) for t in triplets)
    # no <REF> inside a <Task> block is used
    inside, blocked = False, set()
    for i, token_id in enumerate(token_ids):
        if token_id == special_ids['<Task>'] and not inside:
            inside = True
        elif token_id == special_ids['</Task>'] and inside:
            inside = False
        elif inside:
            blocked.add(i)
    assert not blocked & set(positions)


def test_phrase_span_covers_the_phrase_tokens(trp_tokenizer):
    tokenizer, special_ids, decode = trp_tokenizer
    text = 'See <Phrase>the red circle</Phrase>(<Unit>box</Unit>[0]<REF>) and ' \
        '<Phrase>a dog</Phrase>(<Unit>mask</Unit>[0]<REF>).'
    token_ids = _encode(tokenizer, text)
    triplets = _scan(trp_tokenizer, token_ids)
    assert [decode(token_ids[slice(*t.phrase_span)]).strip() for t in triplets] == [
        'the red circle', 'a dog']
    starts = [i + 1 for i, t in enumerate(token_ids) if t == special_ids['<Phrase>']]
    assert [t.phrase_span[0] for t in triplets] == starts
