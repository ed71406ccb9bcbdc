"""``cocokpt2vtinstruct.py``: COCO person keypoints → keypoint / ig_keypoint (+ meta.json)."""
import json

from mmrefvlm.datasets.converters import COCO_KEYPOINT_SIGMAS
from mmrefvlm.trp import parse_answer


def test_cocokpt_records_meta_and_validity(convert, data_dir, assert_valid):
    ann_file = data_dir / 'cocokpt' / 'person_keypoints_val.json'
    records, summary, out = convert('cocokpt2vtinstruct', ann_file, '--prompt-types', 'point')
    source = json.loads(ann_file.read_text())
    anns = {ann['id']: ann for ann in source['annotations']}
    assert [r['id'] for r in records] == ['cocokpt_1_keypoint', 'cocokpt_1_1_ig_keypoint',
                                          'cocokpt_1_2_ig_keypoint']
    keypoint = records[0]
    # people 1, 2 and 5 have labelled keypoints; person 3 has none, the crowd of image 2 is out
    assert [i['keypoints'] for i in keypoint['instances']] == [
        anns[1]['keypoints'], anns[2]['keypoints'], anns[5]['keypoints']]
    assert [i['bbox'] for i in keypoint['instances']] == [[10, 10, 30, 60], [50, 10, 30, 60],
                                                          [0, 50, 8, 25]]
    (triplet, ) = parse_answer(keypoint['conversations'][1]['value'])
    assert (triplet.phrase, triplet.units, triplet.num_refs) == ('person', ('keypoint', ), 3)
    assert keypoint['conversations'][1]['refs'] == [0, 1, 2]
    for record, target, (x0, y0, x1, y1) in ((records[1], 0, (10, 10, 40, 70)),
                                             (records[2], 1, (50, 10, 80, 70))):
        assert record['conversations'][1]['refs'] == [target]
        assert record['instances'] == keypoint['instances']
        (prompt, ) = record['prompts']
        x, y = prompt['data']
        assert prompt['type'] == 'point' and x0 <= x <= x1 and y0 <= y <= y1
    assert summary.written == {'keypoint': 1, 'ig_keypoint': 2}
    assert dict(summary.skipped) == {
        'person skipped: no labelled keypoints': 1, 'person skipped: crowd annotation': 1,
        'image without labelled people': 1,
        'ig_keypoint: person without a mask for the visual prompt': 1}
    meta = json.loads((out.parent / 'meta.json').read_text())
    category = source['categories'][0]
    assert meta['classes'] == ['person'] and meta['keypoint_names'] == category['keypoints']
    assert meta['keypoint_sigmas'] == list(COCO_KEYPOINT_SIGMAS) and len(meta['skeleton']) == 19
    assert meta['skeleton'] == [[i - 1, j - 1] for i, j in category['skeleton']]
    assert [15, 13] in meta['skeleton']  # left_ankle – left_knee, 0-based
    assert_valid(out, 3)
