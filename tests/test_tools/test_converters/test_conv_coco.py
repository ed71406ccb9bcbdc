"""``coco2vtinstruct.py``: COCO instances → ovd / ovs / fovd / fovs."""
import json

from pycocotools import mask as mask_utils

from mmrefvlm.trp import parse_answer

ALL_CLASSES = ['person', 'bicycle', 'cat', 'dog']


def by_id(records):
    return {record['id']: record for record in records}


def grouped_refs(record):
    """``{phrase: [instance index, ...]}`` from the answer's triplets and ``refs``."""
    gpt = record['conversations'][1]
    return {t.phrase: [gpt['refs'][k] for k in t.ref_ordinals]
            for t in parse_answer(gpt['value'])}


def test_coco_records_skips_and_validity(convert, data_dir, assert_valid):
    records, summary, out = convert('coco2vtinstruct', data_dir / 'coco' / 'instances_val.json',
                                    '--image-prefix', 'val2017/')
    records = by_id(records)
    assert sorted(records) == sorted(f'coco_{i}_{t}' for i in (1, 2)
                                     for t in ('ovd', 'ovs', 'fovd', 'fovs'))
    # image 1: the crowd person is dropped, the two dogs form one triplet
    ovd = records['coco_1_ovd']
    assert ovd['image'] == 'val2017/000000000001.jpg' and (ovd['width'], ovd['height']) == (100, 80)
    assert [i['bbox'] for i in ovd['instances']] == [[10, 20, 30, 20], [50, 10, 20, 30],
                                                     [75, 5, 20, 70]]
    assert grouped_refs(ovd) == {'dog': [0, 1], 'person': [2]}
    # every present class is offered, plus the 2 absent ones (fewer than --num-negatives 3)
    assert sorted(ovd['classes']) == sorted(ALL_CLASSES)
    assert 'classes' not in records['coco_1_fovd']
    assert grouped_refs(records['coco_1_fovd']) == {'dog': [0, 1], 'person': [2]}
    # image 2: the cat box leaves the 64x48 image and is clipped; the zero-width box is dropped;
    # the bicycle's 2-point polygon is no mask, so it is left out of ovs/fovs only
    ovd2, ovs2 = records['coco_2_ovd'], records['coco_2_ovs']
    assert [(i['category'], i['bbox']) for i in ovd2['instances']] == [
        ('cat', [40, 20, 24, 28]), ('bicycle', [2, 30, 20, 10])]
    assert [i['category'] for i in ovs2['instances']] == ['cat']
    rle = ovs2['instances'][0]['segmentation']
    assert isinstance(rle['counts'], str) and rle['size'] == [48, 64]
    assert mask_utils.area({'size': rle['size'], 'counts': rle['counts'].encode()}) == 24 * 28
    assert set(ovd2['classes']) >= {'cat', 'bicycle'} and len(ovd2['classes']) == 4
    assert summary.written == {'ovd': 2, 'ovs': 2, 'fovd': 2, 'fovs': 2}
    expected_skips = {}
    for task in ('ovd', 'ovs', 'fovd', 'fovs'):
        expected_skips[f'{task}: annotation skipped: crowd annotation'] = 1
        expected_skips[f'{task}: annotation skipped: empty box'] = 1
        expected_skips[f'{task}: image without usable objects'] = 1  # image 3 has no objects
    expected_skips['ovs: annotation skipped: no usable mask'] = 1
    expected_skips['fovs: annotation skipped: no usable mask'] = 1
    assert dict(summary.skipped) == expected_skips
    assert json.loads((out.parent / 'meta.json').read_text()) == {'classes': ALL_CLASSES}
    assert_valid(out, 8)


def test_coco_all_classes_negatives_and_determinism(convert, data_dir, capsys):
    ann = data_dir / 'coco' / 'instances_val.json'
    first, _, _ = convert('coco2vtinstruct', ann, '--tasks', 'ovd', '--num-negatives', '1',
                          '--seed', '3', out_name='a.jsonl')
    again, _, _ = convert('coco2vtinstruct', ann, '--tasks', 'ovd', '--num-negatives', '1',
                          '--seed', '3', out_name='b.jsonl')
    assert first == again
    image1 = by_id(first)['coco_1_ovd']
    assert len(image1['classes']) == 3 and {'dog', 'person'} < set(image1['classes'])
    full, summary, _ = convert('coco2vtinstruct', ann, '--tasks', 'ovd', '--all-classes',
                               out_name='c.jsonl')
    assert all(record['classes'] == ALL_CLASSES for record in full)
    assert all(record['task'] == 'ovd' for record in full) and summary.num_written == 2
    assert '2 records written' in capsys.readouterr().out
