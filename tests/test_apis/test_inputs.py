"""Requests → VT-Instruct records: placeholders, tasks, visual prompts, earlier turns."""
import numpy as np
import pycocotools.mask as mask_utils
import pytest

from mmrefvlm.apis.inputs import Request, build_record, history_answer, resolve_task


def test_image_placeholder_goes_first_and_the_final_answer_is_empty():
    record = build_record(Request('a.png', 'Please locate the red circle in the image.'), 'a')
    human, gpt = record['conversations']
    assert human == {'from': 'human', 'value': '<image>Please locate the red circle in the image.'}
    assert gpt == {'from': 'gpt', 'value': '', 'refs': []}
    assert record['task'] == 'rec' and record['img_path'] == 'a.png' and record['prompts'] == []


@pytest.mark.parametrize('task,prompted,expected', [
    (None, False, 'rec'), (None, True, 'ig_box'), ('mask', False, 'res'),
    ('mask', True, 'ig_mask'), ('keypoint', True, 'ig_keypoint'), ('caption', False, 'caption'),
    ('reg', True, 'reg')])
def test_a_unit_or_a_task_names_the_task(task, prompted, expected):
    assert resolve_task(task, prompted) == expected


def test_unknown_task_is_reported_with_the_choices():
    with pytest.raises(ValueError, match="unknown task 'boxes'.*box, mask"):
        resolve_task('boxes', False)


def test_missing_region_placeholders_are_appended_and_masks_become_rle():
    mask = np.zeros((6, 8), bool)
    mask[1:3, 2:5] = True
    image = np.zeros((6, 8, 3), np.uint8)
    record = build_record(Request(image, 'What is this?', visual_prompts=[
        dict(type='box', data=[1, 1, 2, 2]), dict(type='mask', data=mask)]), 'x')
    assert record['conversations'][0]['value'] == '<image>What is this? <region>, <region>'
    assert record['task'] == 'ig_box' and record['img'] is image
    rle = record['prompts'][1]['data']
    assert isinstance(rle['counts'], str)
    decoded = mask_utils.decode(dict(size=rle['size'], counts=rle['counts'].encode()))
    assert np.array_equal(decoded.astype(bool), mask)


@pytest.mark.parametrize('prompt,message', [
    (dict(type='circle', data=[1, 2]), "type 'circle'"),
    (dict(type='box', data=[1, 2, 3]), 'a box takes 4 numbers'),
    (dict(type='scribble', data=[[1, 2, 3]]), 'list of \\[x, y\\] points'),
    (dict(type='mask', data=np.zeros((4, 4), bool)), 'non-empty'),
])
def test_bad_visual_prompts_are_named(prompt, message):
    with pytest.raises(ValueError, match=message):
        build_record(Request('a.png', 'q', visual_prompts=[prompt]), 'a')


def test_more_placeholders_than_prompts_is_an_error():
    with pytest.raises(ValueError, match='2 <region> placeholders but 1 visual prompts'):
        build_record(Request('a.png', '<region> and <region>?',
                             visual_prompts=[dict(type='point', data=[1, 2])]), 'a')


def test_earlier_turns_drop_their_task_block_and_keep_their_refs():
    answer = ('<Task>\nUnit decode (True). Class name, target unit and number:\n'
              '- Name: the dog Unit: box Num: 1\n</Task>\n'
              '<Phrase>the dog</Phrase>(<Unit>box</Unit>[0]<REF>)')
    assert history_answer(answer) == ('<Phrase>the dog</Phrase>(<Unit>box</Unit>[0]<REF>)', 1)
    assert history_answer('<Phrase>broken') == ('broken', 0)
    record = build_record(Request('a.png', 'And the cat?', history=[('Where is the dog?', answer)]),
                          'a')
    turns = record['conversations']
    assert [t['from'] for t in turns] == ['human', 'gpt', 'human', 'gpt']
    assert turns[0]['value'] == '<image>Where is the dog?' and turns[1]['refs'] == [0]
    assert turns[2]['value'] == 'And the cat?'
