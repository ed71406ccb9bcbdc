"""``refcoco2vtinstruct.py``: RefCOCO refs pickle + instances.json → rec / res / reg."""
import json
import pickle

import numpy as np
from pycocotools import mask as mask_utils

from mmrefvlm.trp import parse_answer


def write_refs(data_dir, tmp_path):
    """The fixture's refs.json pickled as the original ``refs(unc).p``."""
    path = tmp_path / 'refs(unc).p'
    refs = json.loads((data_dir / 'refcoco' / 'refs.json').read_text())
    path.write_bytes(pickle.dumps(refs, protocol=2))
    return path


def test_refcoco_val_one_record_per_sentence(convert, data_dir, tmp_path, assert_valid):
    refs = write_refs(data_dir, tmp_path)
    records, summary, out = convert('refcoco2vtinstruct', refs,
                                    data_dir / 'refcoco' / 'instances.json', '--split', 'val',
                                    '--prompt-types', 'mask')
    ids = [record['id'] for record in records]
    assert ids == ['refcoco_val_0_0_rec', 'refcoco_val_0_0_res', 'refcoco_val_0_1_rec',
                   'refcoco_val_0_1_res', 'refcoco_val_0_reg', 'refcoco_val_1_2_rec',
                   'refcoco_val_1_2_res', 'refcoco_val_1_reg']
    rec = records[2]
    assert rec['image'] == 'COCO_train2014_000000000001.jpg'
    assert rec['instances'] == [{'bbox': [10.0, 20.0, 30.0, 20.0], 'category': 'dog'}]
    (triplet, ) = parse_answer(rec['conversations'][1]['value'])
    assert triplet.phrase == 'brown dog' and triplet.units == ('box', )  # spaces normalised
    assert rec['conversations'][1]['refs'] == [0] and 'brown dog' in rec['conversations'][0][
        'value']
    res = records[6]
    assert res['instances'][0]['segmentation'] == [[75.0, 5.0, 95.0, 5.0, 95.0, 75.0, 75.0, 75.0]]
    assert parse_answer(res['conversations'][1]['value'])[0].units == ('mask', )
    reg = records[4]
    assert reg['conversations'][1]['value'] == 'dog on the left'
    assert reg['references'] == ['dog on the left', 'brown dog']
    (prompt, ) = reg['prompts']
    assert prompt['type'] == 'mask'
    decoded = mask_utils.decode({'size': prompt['data']['size'],
                                 'counts': prompt['data']['counts'].encode()})
    polygon = mask_utils.frPyObjects([[10, 20, 40, 20, 40, 40, 10, 40]], 80, 100)
    assert np.array_equal(decoded, mask_utils.decode(mask_utils.merge(polygon)))
    assert summary.written == {'rec': 3, 'res': 3, 'reg': 2}
    assert dict(summary.skipped) == {
        'empty sentence': 1, 'ref whose annotation or image is missing from instances.json': 1}
    assert_valid(out, 8)


def test_refcoco_train_reg_per_sentence_with_box_prompt(convert, data_dir, tmp_path,
                                                         assert_valid):
    refs = write_refs(data_dir, tmp_path)
    records, summary, out = convert('refcoco2vtinstruct', refs,
                                    data_dir / 'refcoco' / 'instances.json', '--split', 'train',
                                    '--tasks', 'reg', '--name', 'refcocog')
    assert [r['id'] for r in records] == ['refcocog_train_2_4_reg', 'refcocog_train_2_5_reg']
    assert [r['conversations'][1]['value'] for r in records] == ['the small dog', 'tiny puppy']
    # the box prompt is the tight box of the rasterised polygon [4, 6, 24, 16]
    assert all(r['prompts'] == [{'type': 'box', 'data': [4, 6, 20, 10]}] for r in records)
    assert summary.written == {'reg': 2} and summary.num_skipped == 0
    assert_valid(out, 2)
