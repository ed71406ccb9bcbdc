"""Renderers turn a hand-made instance list into valid records with the right refs."""
import random

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from mmrefvlm.datasets import TASKS
from mmrefvlm.datasets.record import validate_record
from mmrefvlm.datasets.renderers import (ImageInfo, add_turns, render_caption, render_depth,
                                         render_fovd, render_fovs, render_gcg_box,
                                         render_gcg_mask, render_ig_box, render_ig_keypoint,
                                         render_ig_mask, render_keypoint, render_ovd,
                                         render_ovs, render_pope, render_rec, render_reg,
                                         render_res, render_vqa, sample_prompt,
                                         segments_from_spans, strip_image_placeholder)
from mmrefvlm.datasets.renderers.open_vocabulary import NO_OBJECT_ANSWER
from mmrefvlm.trp import parse_answer, strip_tags

IMAGE = ImageInfo('img7', 'images/img7.jpg', 40, 30)
INSTANCES = [
    {'bbox': [2, 2, 10, 8], 'segmentation': [[2, 2, 12, 2, 12, 10, 2, 10]], 'category': 'dog'},
    {'bbox': [20, 4, 8, 8], 'segmentation': [[20, 4, 28, 4, 28, 12, 20, 12]], 'category': 'dog'},
    {'bbox': [5, 15, 10, 10], 'segmentation': [[5, 15, 15, 15, 15, 25]], 'category': 'cat'},
    {'bbox': [28, 18, 8, 10], 'category': 'person',
     'keypoints': [30, 20, 2, 32, 25, 1, 0, 0, 0]},
]
BOX_PROMPT = {'type': 'box', 'data': [20, 4, 8, 8]}
POINT_PROMPT = {'type': 'point', 'data': [7, 6]}


def rng():
    return random.Random(3)


def checked(record):
    """Assert the record is valid and its answers agree with refs; return the parsed triplets."""
    assert validate_record(record) == []
    triplets = []
    for turn in record['conversations']:
        if turn['from'] == 'human':
            continue
        parsed = parse_answer(turn['value'])
        assert turn['value'].count('<REF>') == len(turn.get('refs', []))
        assert sum(t.num_refs for t in parsed) == len(turn.get('refs', []))
        triplets += parsed
    unit = TASKS[record['task']].unit
    assert all(t.units == (unit, ) for t in triplets)
    return triplets


def answer(record):
    return record['conversations'][1]


def test_rec_one_to_many_triplet():
    record = render_rec(IMAGE, INSTANCES, 'the two dogs', [0, 1], rng(), record_id='r1')
    (triplet, ) = checked(record)
    assert (triplet.phrase, triplet.num_refs) == ('the two dogs', 2)
    assert answer(record) == {'from': 'gpt', 'refs': [0, 1], 'value':
                              '<Phrase>the two dogs</Phrase>(<Unit>box</Unit>[0]<REF>[1]<REF>)'}
    assert record['id'] == 'r1' and record['image'] == IMAGE.path
    assert 'the two dogs' in record['conversations'][0]['value']
    assert record['instances'] == INSTANCES and record['instances'] is not INSTANCES


def test_res_single_target():
    record = render_res(IMAGE, INSTANCES, 'the cat', [2], rng())
    (triplet, ) = checked(record)
    assert triplet.units == ('mask', ) and answer(record)['refs'] == [2]
    assert record['id'] == 'img7_res'


def test_reg_answers_with_text_and_keeps_the_prompt():
    record = render_reg(IMAGE, INSTANCES, BOX_PROMPT, 'the dog on the right', rng())
    assert checked(record) == []
    assert record['prompts'] == [BOX_PROMPT]
    assert answer(record) == {'from': 'gpt', 'value': 'the dog on the right'}
    assert record['conversations'][0]['value'].count('<region>') == 1


@pytest.mark.parametrize('render, unit', [(render_ig_box, 'box'), (render_ig_mask, 'mask')])
def test_interactive_one_triplet_per_prompt(render, unit):
    record = render(IMAGE, INSTANCES, [POINT_PROMPT, BOX_PROMPT], [0, 1], rng())
    triplets = checked(record)
    assert [t.phrase for t in triplets] == ['dog', 'dog']
    assert answer(record)['refs'] == [0, 1]
    assert record['conversations'][0]['value'].count('<region>') == 2
    assert record['prompts'] == [POINT_PROMPT, BOX_PROMPT]


def test_interactive_keypoint_and_mismatched_prompts():
    record = render_ig_keypoint(IMAGE, INSTANCES, [POINT_PROMPT], [3], rng(), phrases=['man'])
    (triplet, ) = checked(record)
    assert triplet.phrase == 'man' and answer(record)['refs'] == [3]
    with pytest.raises(ValueError, match='one prompt per target'):
        render_ig_box(IMAGE, INSTANCES, [POINT_PROMPT], [0, 1], rng())


@pytest.mark.parametrize('render', [render_gcg_box, render_gcg_mask])
def test_gcg_grounds_caption_phrases(render):
    caption = 'Two dogs chase a cat.'
    segments = segments_from_spans(caption, [(15, 20, [2]), (0, 8, [0, 1])])
    assert segments == [('Two dogs', [0, 1]), ' chase ', ('a cat', [2]), '.']
    record = render(IMAGE, INSTANCES, segments, rng())
    triplets = checked(record)
    assert [(t.phrase, t.num_refs) for t in triplets] == [('Two dogs', 2), ('a cat', 1)]
    assert answer(record)['refs'] == [0, 1, 2]
    assert strip_tags(answer(record)['value']) == caption


def test_segments_from_spans_rejects_overlap():
    with pytest.raises(ValueError, match='overlaps'):
        segments_from_spans('a dog and a cat', [(0, 5, [0]), (3, 9, [1])])


@pytest.mark.parametrize('render', [render_ovd, render_ovs])
def test_open_vocabulary_follows_the_offered_class_order(render):
    record = render(IMAGE, INSTANCES, rng(), classes=['cat', 'horse', 'dog'])
    triplets = checked(record)
    assert [(t.phrase, t.num_refs) for t in triplets] == [('cat', 1), ('dog', 2)]
    assert answer(record)['refs'] == [2, 0, 1]
    assert record['classes'] == ['cat', 'horse', 'dog']
    assert 'cat, horse, dog' in record['conversations'][0]['value']


def test_open_vocabulary_negative_and_argument_checks():
    record = render_ovd(IMAGE, INSTANCES, rng(), classes=['horse'])
    assert answer(record) == {'from': 'gpt', 'value': NO_OBJECT_ANSWER}
    with pytest.raises(ValueError, match='classes must be given'):
        render_ovd(IMAGE, INSTANCES, rng())
    with pytest.raises(ValueError, match='classes must be omitted'):
        render_fovd(IMAGE, INSTANCES, rng(), classes=['dog'])


@pytest.mark.parametrize('render', [render_fovd, render_fovs])
def test_freeform_groups_every_instance_by_sorted_category(render):
    shuffled = [INSTANCES[3], INSTANCES[0], INSTANCES[2], INSTANCES[1]]
    record = render(IMAGE, shuffled, rng())
    triplets = checked(record)
    assert [(t.phrase, t.num_refs) for t in triplets] == [('cat', 1), ('dog', 2), ('person', 1)]
    assert answer(record)['refs'] == [2, 1, 3, 0]
    assert 'classes' not in record


def test_keypoint_targets_only_labelled_instances():
    record = render_keypoint(IMAGE, INSTANCES, rng())
    (triplet, ) = checked(record)
    assert (triplet.phrase, triplet.units) == ('person', ('keypoint', ))
    assert answer(record)['refs'] == [3]
    assert 'people' in record['conversations'][0]['value'] or 'person' in \
        record['conversations'][0]['value']
    with pytest.raises(ValueError, match='no instance with labelled keypoints'):
        render_keypoint(IMAGE, INSTANCES[:3], rng())


def test_depth_points_its_ref_at_a_whole_image_instance():
    record = render_depth(IMAGE, 'depth/img7.png', rng(), instances=INSTANCES)
    (triplet, ) = checked(record)
    assert triplet.units == ('depth', ) and record['depth'] == 'depth/img7.png'
    assert answer(record)['refs'] == [4]
    assert record['instances'][4]['bbox'] == [0, 0, 40, 30]
    assert record['instances'][:4] == INSTANCES


def test_text_only_tasks():
    caption = render_caption(IMAGE, 'Two dogs and a cat.', rng())
    vqa = render_vqa(IMAGE, 'How many dogs are there?', '2', rng())
    yes = render_pope(IMAGE, 'orange', True, rng())
    no = render_pope(IMAGE, 'horse', False, rng())
    for record in (caption, vqa, yes, no):
        assert checked(record) == [] and 'refs' not in answer(record)
    assert answer(caption)['value'] == 'Two dogs and a cat.'
    assert 'How many dogs are there?' in vqa['conversations'][0]['value']
    assert 'an orange' in yes['conversations'][0]['value']
    assert (answer(yes)['value'], answer(no)['value']) == ('Yes', 'No')


def test_trp_tags_never_reach_the_human_turn():
    with pytest.raises(ValueError, match='<REF>'):
        render_rec(IMAGE, INSTANCES, 'the <REF> dog', [0], rng())
    with pytest.raises(ValueError, match='<Phrase>'):
        render_reg(IMAGE, INSTANCES, BOX_PROMPT, '<Phrase>dog</Phrase>', rng())
    with pytest.raises(ValueError, match='no target'):
        render_rec(IMAGE, INSTANCES, 'the dog', [], rng())
    with pytest.raises(ValueError, match='not an index'):
        render_rec(IMAGE, INSTANCES, 'the dog', [9], rng())


def test_add_turns_accumulates_turns_prompts_and_refs():
    record = render_reg(IMAGE, INSTANCES, BOX_PROMPT, 'the right dog', rng())
    add_turns(record, render_reg(IMAGE, INSTANCES, POINT_PROMPT, 'the left dog', rng()))
    assert checked(record) == []
    assert record['prompts'] == [BOX_PROMPT, POINT_PROMPT]
    turns = record['conversations']
    assert [t['from'] for t in turns] == ['human', 'gpt', 'human', 'gpt']
    assert '<image>' not in turns[2]['value'] and turns[2]['value'].count('<region>') == 1

    rec = render_rec(IMAGE, INSTANCES, 'the cat', [2], rng())
    add_turns(rec, render_rec(IMAGE, INSTANCES, 'the dogs', [0, 1], random.Random(8)))
    checked(rec)
    assert [t.get('refs') for t in rec['conversations']] == [None, [2], None, [0, 1]]
    with pytest.raises(ValueError, match="another 'instances'"):
        add_turns(rec, render_rec(IMAGE, INSTANCES[:2], 'the dogs', [0, 1], rng()))


@pytest.mark.parametrize('text, expected', [
    ('What are the coordinates of X in the image <image>?',
     'What are the coordinates of X in the image?'),
    ('<image>Describe this image.', 'Describe this image.'),
    ('For the given image <image>, describe <region>.', 'For the given image, describe <region>.'),
])
def test_strip_image_placeholder(text, expected):
    assert strip_image_placeholder(text) == expected


def test_sample_prompt_stays_inside_the_mask():
    mask = np.zeros((30, 40), dtype=bool)
    mask[5:25, 3:9] = True  # an L shape: a vertical bar and a horizontal foot
    mask[19:25, 3:30] = True
    generator = random.Random(0)
    for _ in range(20):
        x, y = sample_prompt('point', mask, generator)['data']
        assert mask[y, x]
        line = sample_prompt('scribble', mask, generator)['data']
        assert len(line) >= 2
        for (x0, y0), (x1, y1) in zip(line, line[1:]):
            for t in np.linspace(0, 1, 50):
                assert mask[int(round(y0 + t * (y1 - y0))), int(round(x0 + t * (x1 - x0)))]
    assert sample_prompt('box', mask, generator)['data'] == [3, 5, 27, 20]
    rle = sample_prompt('mask', mask, generator)['data']
    rle_bytes = dict(rle, counts=rle['counts'].encode())
    assert np.array_equal(mask_utils.decode(rle_bytes).astype(bool), mask)
    with pytest.raises(ValueError, match='unknown prompt type'):
        sample_prompt('lasso', mask, generator)
