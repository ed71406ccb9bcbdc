"""``coco_interactive2vtinstruct.py``: PSALM COCO-Interactive → ig_box / ig_mask."""
import numpy as np
from pycocotools import mask as mask_utils

from mmrefvlm.datasets.converters import scribble_polyline
from mmrefvlm.trp import parse_answer


def test_scribble_polyline_follows_the_stroke():
    mask = np.zeros((20, 30), bool)
    mask[5, 2:28] = True  # a horizontal stroke
    line = scribble_polyline(mask, max_points=4)
    assert line == [[2, 5], [10, 5], [19, 5], [27, 5]]
    dot = np.zeros((5, 5), bool)
    dot[2, 3] = True
    assert scribble_polyline(dot) == [[3, 2], [3, 2]]


def test_coco_interactive_records(convert, data_dir, assert_valid):
    root = data_dir / 'coco_interactive'
    records, summary, out = convert('coco_interactive2vtinstruct',
                                    root / 'coco_interactive_val_psalm.json',
                                    root / 'categories.json')
    ids = [r['id'] for r in records]
    kinds = ('point', 'box', 'scribble', 'mask')
    assert ids == ([f'coco_interactive_7_1_{k}_{t}' for k in kinds for t in ('ig_box', 'ig_mask')]
                   + [f'coco_interactive_7_3_{k}_{t}' for k in ('box', 'mask')
                      for t in ('ig_box', 'ig_mask')])
    prompts = {r['id']: r['prompts'] for r in records}
    assert prompts['coco_interactive_7_1_point_ig_box'] == [{'type': 'point', 'data': [25, 30]}]
    # PSALM's box prompt mask covers x 8..42, y 18..42 (inclusive)
    assert prompts['coco_interactive_7_1_box_ig_mask'] == [{'type': 'box',
                                                           'data': [8, 18, 35, 25]}]
    scribble = prompts['coco_interactive_7_1_scribble_ig_box'][0]
    assert scribble['type'] == 'scribble' and scribble['data'][0] == [12, 22]
    assert scribble['data'][-1] == [36, 38] and len(scribble['data']) == 8
    mask_prompt = prompts['coco_interactive_7_3_mask_ig_mask'][0]['data']
    assert mask_utils.area({'size': mask_prompt['size'],
                            'counts': mask_prompt['counts'].encode()}) == 27 * 65
    for record in records:
        (instance, ) = record['instances']
        assert record['conversations'][1]['refs'] == [0]
        (triplet, ) = parse_answer(record['conversations'][1]['value'])
        assert triplet.phrase == instance['category']
        assert triplet.units == (('box', ) if record['task'] == 'ig_box' else ('mask', ))
        assert ('segmentation' in instance) == (record['task'] == 'ig_mask')
    assert records[0]['instances'][0]['bbox'] == [10, 20, 30, 20]
    assert records[0]['instances'][0]['category'] == 'dog'
    assert summary.written == {'ig_box': 6, 'ig_mask': 6}
    assert dict(summary.skipped) == {
        'annotation skipped: crowd annotation': 1, 'missing or empty point prompt mask': 2,
        'missing or empty scribble prompt mask': 2}
    assert_valid(out, 12)


def test_coco_interactive_one_prompt_type(convert, data_dir):
    root = data_dir / 'coco_interactive'
    records, summary, _ = convert('coco_interactive2vtinstruct',
                                  root / 'coco_interactive_val_psalm.json',
                                  root / 'categories.json', '--tasks', 'ig_mask',
                                  '--prompt-types', 'scribble')
    assert [r['id'] for r in records] == ['coco_interactive_7_1_scribble_ig_mask']
    assert dict(summary.skipped) == {'annotation skipped: crowd annotation': 1,
                                     'missing or empty scribble prompt mask': 1}
