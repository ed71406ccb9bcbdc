"""The VT-Instruct record schema: ``validate_record``, ``read_records``, ``load_meta`` and the
examples of ``docs/vtinstruct_format.md``."""
import copy
import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils

from mmrefvlm.datasets import TASKS
from mmrefvlm.datasets.record import Fault, load_meta, read_records, validate_record
from mmrefvlm.trp import TRPParseError, parse_answer

DOC = Path(__file__).resolve().parents[2] / 'docs' / 'vtinstruct_format.md'
META = {'keypoint_names': ['head', 'hip', 'foot']}


def rec_record() -> dict:
    """A valid two-turn ``rec`` record on a 64x48 image."""
    return {
        'id': 'r0', 'task': 'rec', 'image': 'a.png', 'width': 64, 'height': 48,
        'instances': [{'bbox': [4, 6, 20, 16], 'category': 'square'},
                      {'bbox': [30, 10, 24, 30], 'category': 'circle'}],
        'conversations': [
            {'from': 'human', 'value': '<image>\nWhere is the square?'},
            {'from': 'gpt', 'value': '<Phrase>square</Phrase>(<Unit>box</Unit>[0]<REF>)',
             'refs': [0]},
            {'from': 'human', 'value': 'And both shapes?'},
            {'from': 'gpt', 'value': '<Phrase>shape</Phrase>(<Unit>box</Unit>[0]<REF>[1]<REF>)',
             'refs': [1, 0]}]}


def ig_record() -> dict:
    """A valid ``ig_keypoint`` record: two prompts consumed over two human turns."""
    return {
        'id': 'k0', 'task': 'ig_keypoint', 'image': 'a.png', 'width': 64, 'height': 48,
        'instances': [{'bbox': [10, 4, 12, 40], 'category': 'figure',
                       'keypoints': [16, 8, 2, 16, 24, 1, 0, 0, 0],
                       'segmentation': {'size': [48, 64], 'counts': 'PPYo0'}}],
        'prompts': [{'type': 'point', 'data': [16, 20]},
                    {'type': 'scribble', 'data': [[12, 10], [18, 30]]}],
        'conversations': [
            {'from': 'human', 'value': '<image>\nKeypoints of <region>?'},
            {'from': 'gpt', 'value': '<Phrase>figure</Phrase>(<Unit>keypoint</Unit>[0]<REF>)',
             'refs': [0]},
            {'from': 'human', 'value': 'And of <region>?'},
            {'from': 'gpt',
             'value': '<Phrase>figure</Phrase>(<Unit>box, keypoint</Unit>[0]<REF>)',
             'refs': [0]}]}


def fields(faults):
    return [fault.field for fault in faults]


def test_valid_records_have_no_faults():
    assert validate_record(rec_record()) == []
    assert validate_record(ig_record(), META) == []


def set_path(record, path, value):
    """Set ``record[path]`` where ``path`` is a tuple of keys/indices; ``...`` deletes."""
    target = record
    for key in path[:-1]:
        target = target[key]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value


# (record factory, path, new value, expected field, expected words in the message)
CASES = [
    (rec_record, ('id', ), ..., 'id', "required key 'id' is missing"),
    (rec_record, ('task', ), 'detect', 'task', "unknown task 'detect'"),
    (rec_record, ('width', ), 0, 'width', 'positive integer'),
    (rec_record, ('height', ), True, 'height', 'positive integer'),
    (rec_record, ('instances', 1, 'bbox'), [30, 10, 0, 30], 'instances[1].bbox',
     'width and height must be positive'),
    (rec_record, ('instances', 1, 'bbox'), [30, 10, 35.5, 30], 'instances[1].bbox',
     'leaves the 64x48 image'),
    (rec_record, ('instances', 1, 'bbox'), [30, 10, 24], 'instances[1].bbox', '4 numbers'),
    (rec_record, ('instances', 0, 'category'), '', 'instances[0].category', 'non-empty'),
    (rec_record, ('instances', 0, 'segmentation'), [[1, 2, 3, 4, 5]],
     'instances[0].segmentation[0]', 'even-length'),
    (rec_record, ('instances', 0, 'segmentation'), [[1, 2, 3, 4]],
     'instances[0].segmentation[0]', 'at least 6 numbers'),
    (rec_record, ('instances', 0, 'segmentation'), {'size': [64, 48], 'counts': 'abc'},
     'instances[0].segmentation', 'RLE size [64, 48] differs'),
    (rec_record, ('instances', 0, 'segmentation'), {'size': [48, 64], 'counts': [1, 2]},
     'instances[0].segmentation', "compressed 'counts'"),
    (rec_record, ('conversations', 1, 'refs'), [0, 1], 'conversations[1].refs',
     "'refs' has 2 entries but the answer has 1 <REF> tokens"),
    (rec_record, ('conversations', 3, 'refs'), [1, 2], 'conversations[3].refs[1]',
     'ref 2 points past the 2 instances'),
    (rec_record, ('conversations', 1, 'refs'), ..., 'conversations[1].refs',
     "has 1 <REF> tokens but the turn has no 'refs'"),
    (rec_record, ('conversations', 0, 'value'), 'Where is the square?', 'conversations',
     '<image> must appear exactly once in the conversation, found 0 times'),
    (rec_record, ('conversations', 2, 'value'), '<image> and both?', 'conversations',
     'found 2 times'),
    (rec_record, ('conversations', 2, 'from'), 'gpt', 'conversations[2].from',
     "expected 'human', got 'gpt'"),
    (rec_record, ('conversations', 2, 'value'), 'And <Phrase>both</Phrase>?',
     'conversations[2].value', 'human turns may not contain <Phrase>, </Phrase>'),
    (rec_record, ('conversations', 1, 'value'),
     '<Task>\nUnit decode (False).\n</Task>\n<Phrase>square</Phrase>(<Unit>box</Unit>[0]<REF>)',
     'conversations[1].value', 'gpt turns may not contain <Task>'),
    (rec_record, ('conversations', 3, 'value'), 'Both.', 'conversations[3].refs',
     "'refs' has 2 entries but the answer has 0 <REF> tokens"),
    (rec_record, ('conversations', 3, 'value'),
     '<Phrase>shape</Phrase>(<Unit>mask</Unit>[0]<REF>[1]<REF>)', 'conversations[3].value',
     "triplet 'shape' has unit 'mask' but task 'rec' decodes 'box'"),
    (rec_record, ('prompts', ), [{'type': 'point', 'data': [1, 1]}], 'prompts',
     "human turns have 0 <region> tokens but 'prompts' has 1 entries"),
    (ig_record, ('prompts', 1, 'type'), 'lasso', 'prompts[1].type', "got 'lasso'"),
    (ig_record, ('prompts', 0, 'data'), [70, 20], 'prompts[0].data',
     'point [70, 20] lies outside the 64x48 image'),
    (ig_record, ('prompts', 1, 'data'), [[12, 10]], 'prompts[1].data', 'at least 2 points'),
    (ig_record, ('prompts', 1, 'data'), [[12, 10], [18]], 'prompts[1].data[1]',
     'a point must be 2 numbers'),
    (ig_record, ('instances', 0, 'keypoints'), [16, 8, 2, 16, 24, 2], 'instances[0].keypoints',
     '2 keypoints but meta.json names 3'),
    (ig_record, ('instances', 0, 'keypoints'), [16, 8, 2, 16, 24, 3, 0, 0, 0],
     'instances[0].keypoints', 'visibility must be 0, 1 or 2, got 3'),
    (ig_record, ('instances', 0, 'keypoints'), [16, 8, 2, 16], 'instances[0].keypoints',
     'multiple of 3'),
    (ig_record, ('instances', 0, 'depth'), -1.0, 'instances[0].depth', 'non-negative'),
    (ig_record, ('conversations', 3, 'value'),
     '<Phrase>figure</Phrase>(<Unit>box</Unit>[0]<REF>)', 'conversations[3].value',
     "unit 'box' but task 'ig_keypoint' decodes 'keypoint'"),
    (ig_record, ('conversations', 1, 'value'),
     '<Phrase>figure</Phrase>(<Unit>keypoint</Unit>[0]<REF>) at <region>',
     'conversations[1].value', 'gpt turns may not contain <region>'),
]


@pytest.mark.parametrize('make, path, value, field, words', CASES,
                         ids=[f'{c[3]}-{i}' for i, c in enumerate(CASES)])
def test_each_fault_is_reported_once_with_its_field(make, path, value, field, words):
    record = make()
    set_path(record, path, value)
    faults = validate_record(record, META)
    assert len(faults) == 1, faults
    assert faults[0].field == field
    assert words in faults[0].message


def leaf_paths(value, prefix=()):
    """Every path to a value inside a nested record (containers included)."""
    yield prefix
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    for key, child in items:
        yield from leaf_paths(child, prefix + (key, ))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 100) | st.floats(allow_nan=False)
    | st.text(alphabet='<>[]()REFPhrasUnitgo0123, ', max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(['size', 'counts', 'type', 'data', 'from', 'value', 'bbox']), inner,
        max_size=3),
    max_leaves=8)
PATHS = [(make, path) for make in (rec_record, ig_record) for path in leaf_paths(make())
         if path]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PATHS), JSON_VALUES)
def test_any_json_value_anywhere_gives_faults_never_an_exception(target, value):
    make, path = target
    record = make()
    set_path(record, path, value)
    faults = validate_record(record, META)
    assert all(isinstance(f, Fault) and f.field and f.message for f in faults)


def test_box_slack_is_one_pixel():
    record = rec_record()
    record['instances'][1]['bbox'] = [-1, 10, 65, 39]  # x2 = 64 + 0, y2 = 48 + 1: inside slack
    assert validate_record(record) == []
    record['instances'][1]['bbox'] = [-1.5, 10, 24, 30]
    assert fields(validate_record(record)) == ['instances[1].bbox']


def test_keypoint_count_is_free_without_meta():
    record = ig_record()
    record['instances'][0]['keypoints'] = [16, 8, 2, 16, 24, 2]
    assert validate_record(record) == []


def test_broken_trp_reports_the_parser_offset():
    record = rec_record()
    broken = '<Phrase>square(<Unit>box</Unit>[0]<REF>)'
    record['conversations'][1]['value'] = broken
    with pytest.raises(TRPParseError) as error:
        parse_answer(broken)
    faults = validate_record(record)
    assert error.value.offset == broken.index('<Unit>')
    assert faults[0] == Fault('conversations[1].value', f'answer does not parse: {error.value}')
    assert f'at character {error.value.offset}' in faults[0].message


def test_unit_task_without_any_triplet():
    record = rec_record()
    for turn in (1, 3):
        record['conversations'][turn]['value'] = 'Somewhere.'
        del record['conversations'][turn]['refs']
    faults = validate_record(record)
    assert faults == [Fault('conversations',
                            "task 'rec' decodes 'box' but no answer has a triplet")]


def test_prompted_task_without_prompts():
    record = {
        'id': 'g0', 'task': 'reg', 'image': 'a.png', 'width': 64, 'height': 48,
        'instances': [], 'conversations': [
            {'from': 'human', 'value': '<image>\nDescribe it.'},
            {'from': 'gpt', 'value': 'A square.'}]}
    assert fields(validate_record(record)) == ['prompts']


def test_depth_task_needs_a_depth_map():
    record = {
        'id': 'd0', 'task': 'depth', 'image': 'a.png', 'width': 64, 'height': 48,
        'instances': [{'bbox': [0, 0, 64, 48], 'category': 'scene'}],
        'conversations': [
            {'from': 'human', 'value': '<image>\nDepth?'},
            {'from': 'gpt', 'value': '<Phrase>depth</Phrase>(<Unit>depth</Unit>[0]<REF>)',
             'refs': [0]}]}
    assert fields(validate_record(record)) == ['depth']
    record['depth'] = 'd.png'
    assert validate_record(record) == []


def test_conversation_must_end_with_gpt_and_records_must_be_objects():
    record = rec_record()
    record['conversations'].append({'from': 'human', 'value': 'Thanks!'})
    assert fields(validate_record(record)) == ['conversations']
    assert fields(validate_record(['not', 'a', 'record'])) == ['record']


def test_read_records_reports_json_errors_and_duplicate_ids_and_filters_tasks():
    good = rec_record()
    other = dict(copy.deepcopy(ig_record()), id='k0')
    lines = [json.dumps(good), '', '{"id": ', json.dumps(other), json.dumps(good), '[1]']
    out = list(read_records(lines, META))
    assert [(line, fields(faults)) for line, _, faults in out] == [
        (1, []), (3, ['json']), (4, []), (5, ['id']), (6, ['record'])]
    assert out[3][2][0].message == "duplicate id 'r0' (first used on line 1)"
    assert out[1][1] is None and out[2][1]['id'] == 'k0'
    filtered = list(read_records(lines, META, tasks=['ig_keypoint']))
    # rec records are passed over, yet still count for duplicate ids; bad lines are kept
    assert [line for line, _, _ in filtered] == [3, 4, 6]


def test_load_meta_checks_its_fields(tmp_path):
    path = tmp_path / 'meta.json'
    path.write_text(json.dumps({'keypoint_names': ['a', 'b'], 'keypoint_sigmas': [0.1],
                                'skeleton': [[0, 1]]}))
    with pytest.raises(ValueError, match='keypoint_sigmas'):
        load_meta(str(path))
    path.write_text(json.dumps({'keypoint_names': ['a', 'b'], 'skeleton': [[0, 2]]}))
    with pytest.raises(ValueError, match='skeleton'):
        load_meta(str(path))
    path.write_text('{"classes": ["a"]')
    with pytest.raises(ValueError, match='not valid JSON'):
        load_meta(str(path))


def doc_json_blocks():
    text = DOC.read_text(encoding='utf-8')
    return [json.loads(block) for block in re.findall(r'```json\n(.*?)```', text, re.S)]


def test_doc_has_one_valid_example_per_task():
    blocks = doc_json_blocks()
    metas = [block for block in blocks if 'keypoint_names' in block]
    records = [block for block in blocks if 'conversations' in block]
    assert len(metas) == 1 and len(records) + 1 == len(blocks)
    meta = metas[0]
    assert len(meta['keypoint_sigmas']) == len(meta['keypoint_names']) == 17
    assert sorted(record['task'] for record in records) == sorted(TASKS)
    for record in records:
        assert validate_record(record, meta) == [], record['id']
    assert len({record['id'] for record in records}) == len(records)


def test_doc_example_masks_match_their_boxes():
    """Each example segmentation, decoded by pycocotools, has the instance's box (±1 px)."""
    instances = [inst for record in doc_json_blocks() if 'conversations' in record
                 for inst in record['instances'] if 'segmentation' in inst]
    assert len(instances) >= 6
    for instance in instances:
        segmentation = instance['segmentation']
        if isinstance(segmentation, list):
            rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, 480, 640))
        else:
            rle = dict(segmentation, counts=segmentation['counts'].encode())
        assert mask_utils.decode(rle).shape == (480, 640)
        np.testing.assert_allclose(mask_utils.toBbox(rle), instance['bbox'], atol=1.0)
