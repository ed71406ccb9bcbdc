"""Property test: compose → parse (string level and token level) recovers the triplets."""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmrefvlm.trp import (compose_answer, compose_cot, compose_triplet, cot_items, parse_answer,
                          parse_ref_tokens, strip_tags)

# Text without tag characters; brackets, parentheses and commas are allowed on purpose.
_TEXT_ALPHABET = 'abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789.,;:!?\'-()[]\n'
_plain = st.text(alphabet=_TEXT_ALPHABET, max_size=12)
_phrase = st.text(alphabet=_TEXT_ALPHABET, min_size=1, max_size=12).filter(str.strip)
_unit = st.sampled_from(['box', 'mask', 'keypoint', 'depth', 'point', 'custom unit'])
_units = st.one_of(_unit, st.lists(_unit, min_size=1, max_size=3))


def _norm(text):
    return ' '.join(text.split())


@st.composite
def _phrase_content(draw, depth):
    """A phrase's content: plain text, or (when ``depth`` > 0) text with nested phrases.

    Returns ``(content, expected_triplets, plain_text)`` where ``plain_text`` is computed by
    hand (tags and unit groups dropped) and the triplets are ``(phrase, units, num_refs)``.
    """
    if depth == 0 or not draw(st.booleans()):
        phrase = draw(_phrase)
        return phrase, [], phrase
    content, expected, plain = '', [], ''
    for _ in range(draw(st.integers(1, 3))):
        text = draw(_plain)
        content, plain = content + text, plain + text
        inner, inner_expected, inner_plain = draw(_phrase_content(depth - 1))
        if draw(st.booleans()):
            units, num_refs = draw(_units), draw(st.integers(1, 5))
            content += compose_triplet(inner, units, num_refs)
            expected += inner_expected + [(_norm(inner_plain), units, num_refs)]
        else:
            content += f'<Phrase>{inner}</Phrase>'
            expected += inner_expected
        plain += inner_plain
    return content, expected, plain


@st.composite
def _answers(draw):
    """``(text, expected_triplets, expected_plain_text)`` of a random answer."""
    parts, expected, plain = [], [], ''
    for _ in range(draw(st.integers(0, 4))):
        text = draw(_plain)
        content, inner_expected, content_plain = draw(_phrase_content(2))
        units, num_refs = draw(_units), draw(st.integers(1, 5))
        parts += [text, (content, units, num_refs)]
        expected += inner_expected + [(_norm(content_plain), units, num_refs)]
        plain += text + content_plain
    tail = draw(_plain)
    parts.append(tail)
    plain += tail
    expected = [(phrase, (units, ) if isinstance(units, str) else tuple(units), num_refs)
                for phrase, units, num_refs in expected]
    body = compose_answer(parts)
    cot = compose_cot([(phrase, ', '.join(units), num) for phrase, units, num in expected])
    text = cot + body if draw(st.booleans()) else body
    return text, expected, _norm(plain)


@settings(max_examples=80, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(_answers())
def test_compose_parse_round_trip(trp_tokenizer, answer):
    text, expected, plain = answer
    triplets = parse_answer(text)
    assert [(t.phrase, t.units, t.num_refs) for t in triplets] == expected
    ordinals = [ordinal for t in triplets for ordinal in t.ref_ordinals]
    assert ordinals == list(range(text.count('<REF>')))
    for triplet in triplets:
        start, end = triplet.phrase_span
        assert text[start - len('<Phrase>'):start] == '<Phrase>'
        assert text[end:end + len('</Phrase>')] == '</Phrase>'
        assert strip_tags(text[start:end]) == triplet.phrase
    assert strip_tags(text) == plain
    assert compose_cot(cot_items(triplets)) == compose_cot(
        [(phrase, ', '.join(units), num) for phrase, units, num in expected])

    # token level: the router's scanner groups the same <REF>s under the same phrase and units
    tokenizer, special_ids, decode = trp_tokenizer
    token_ids = tokenizer(text, add_special_tokens=False)['input_ids']
    token_triplets = parse_ref_tokens(token_ids, special_ids, decode)
    assert [(t.phrase, t.units, len(t.ref_positions)) for t in token_triplets] == expected
    ref_positions = [i for i, token_id in enumerate(token_ids) if token_id == special_ids['<REF>']]
    for triplet, token_triplet in zip(triplets, token_triplets):
        assert token_triplet.ref_positions == tuple(ref_positions[o] for o in triplet.ref_ordinals)
