"""Readable answers: tags stripped, phrases tied to their triplets."""
from mmrefvlm.visualization import AnswerSpan, readable_answer, task_block

COT = ('<Task>\nUnit decode (True). Class name, target unit and number:\n'
       '- Name: dog Unit: box Num: 2\n</Task>\n')


def test_phrases_carry_their_triplet_and_the_task_block_is_dropped():
    text = COT + 'Two <Phrase>dogs</Phrase>(<Unit>box</Unit>[0]<REF>[1]<REF>) chase a ' \
                 '<Phrase>ball</Phrase>(<Unit>mask</Unit>[0]<REF>).'
    assert readable_answer(text) == [AnswerSpan('Two'), AnswerSpan('dogs', 0),
                                     AnswerSpan('chase a'), AnswerSpan('ball', 1),
                                     AnswerSpan('.')]


def test_a_phrase_with_two_unit_groups_is_one_run_and_nested_phrases_join_the_outer():
    two_groups = '<Phrase>cats</Phrase>((<Unit>box</Unit>[0]<REF>), <Unit>mask</Unit>[0]<REF>)'
    assert readable_answer(two_groups) == [AnswerSpan('cats', 0)]
    nested = ('<Phrase>dog in the <Phrase>park</Phrase>(<Unit>box</Unit>[0]<REF>)</Phrase>'
              '(<Unit>box</Unit>[0]<REF>)')
    assert readable_answer(nested) == [AnswerSpan('dog in the park', 1)]


def test_malformed_answers_fall_back_to_plain_text():
    assert readable_answer('a <Phrase>dog (<Unit>box') == [AnswerSpan('a dog (')]
    assert readable_answer('') == []


def test_task_block_is_read_only_at_the_start():
    assert task_block(COT + 'x').splitlines()[0] == 'Unit decode (True). Class name, target ' \
                                                    'unit and number:'
    assert task_block('no block') == ''
