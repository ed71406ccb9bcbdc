"""``glamm_gcg2vtinstruct.py``: GLaMM GCG JSON → gcg_mask."""
from pycocotools import mask as mask_utils

from mmrefvlm.trp import parse_answer, strip_tags


def area(rle):
    return int(mask_utils.area({'size': rle['size'], 'counts': rle['counts'].encode()}))


def test_glamm_records_one_to_many_masks(convert, data_dir, assert_valid):
    records, summary, out = convert('glamm_gcg2vtinstruct',
                                    data_dir / 'glamm_gcg' / 'gcg_val.json', '--image-prefix',
                                    'images/')
    assert [r['id'] for r in records] == ['glamm_gcg_0_img_a', 'glamm_gcg_2_img_c']
    first = records[0]
    assert first['image'] == 'images/img_a.jpg' and (first['width'], first['height']) == (64, 48)
    # the fixture's masks are the rectangles x 2..11 / y 3..20, x 20..39 / y 10..29, x 45..60 /
    # y 30..44 (inclusive pixels)
    assert [i['bbox'] for i in first['instances']] == [[2, 3, 10, 18], [20, 10, 20, 20],
                                                       [45, 30, 16, 15]]
    assert [area(i['segmentation']) for i in first['instances']] == [180, 400, 240]
    answer = first['conversations'][1]
    assert strip_tags(answer['value']) == 'A man rides a brown horse.'
    assert [(t.phrase, t.units, t.num_refs) for t in parse_answer(answer['value'])] == [
        ('A man', ('mask', ), 1), ('a brown horse', ('mask', ), 2)]
    assert answer['refs'] == [0, 1, 2]
    assert (records[1]['width'], records[1]['height']) == (40, 30)
    assert summary.written == {'gcg_mask': 2}
    assert dict(summary.skipped) == {
        'empty mask or mask of another size': 1, 'phrase without a usable mask': 1,
        'entry without a grounded phrase': 1, 'phrase span outside the caption': 1}
    assert_valid(out, 2)
