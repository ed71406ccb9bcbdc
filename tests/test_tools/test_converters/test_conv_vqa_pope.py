"""``vqav22vtinstruct.py`` (VQAv2 → vqa) and ``pope2vtinstruct.py`` (POPE → pope)."""
import json

from mmrefvlm.datasets.converters import pope_object


def test_vqav2_records_keep_all_answers(convert, data_dir, assert_valid):
    root = data_dir / 'vqav2'
    records, summary, out = convert('vqav22vtinstruct', root / 'questions.json',
                                    '--annotations', root / 'annotations.json', '--sizes-from',
                                    root / 'images.json')
    assert [r['id'] for r in records] == ['vqav2_10', 'vqav2_20']
    first = records[0]
    assert first['image'] == 'val2014/COCO_val2014_000000000001.jpg'
    assert (first['width'], first['height']) == (100, 80)
    assert 'What color is the dog?' in first['conversations'][0]['value']
    assert first['conversations'][1]['value'] == 'brown'
    annotations = json.loads((root / 'annotations.json').read_text())['annotations']
    assert first['references'] == [a['answer'] for a in annotations[0]['answers']]
    assert len(first['references']) == 10 and first['question_id'] == 10
    assert records[1]['conversations'][1]['value'] == '2'
    assert summary.written == {'vqa': 2}
    assert dict(summary.skipped) == {'question without an annotation': 1,
                                     'image of unknown size': 1}
    assert_valid(out, 2)


def test_vqav2_without_annotations_has_empty_answers(convert, data_dir, assert_valid):
    root = data_dir / 'vqav2'
    records, summary, out = convert('vqav22vtinstruct', root / 'questions.json', '--sizes-from',
                                    root / 'images.json', '--image-prefix', '')
    assert [r['id'] for r in records] == ['vqav2_10', 'vqav2_20', 'vqav2_21']
    assert all(r['conversations'][1]['value'] == '' and 'references' not in r for r in records)
    assert records[0]['image'] == 'COCO_val2014_000000000001.jpg'
    assert dict(summary.skipped) == {'image of unknown size': 1}
    assert_valid(out, 3)


def test_pope_object():
    assert pope_object('Is there a dining table in the image?') == 'dining table'
    assert pope_object('Is there an apple in the imgae?') == 'apple'
    assert pope_object('What is this?') is None


def test_pope_records(convert, data_dir, assert_valid):
    root = data_dir / 'pope'
    records, summary, out = convert('pope2vtinstruct', root / 'coco_pope_random.json',
                                    '--sizes-from', root / 'images.json', '--id-prefix',
                                    'pope_random')
    assert [r['id'] for r in records] == ['pope_random_1', 'pope_random_2', 'pope_random_3']
    assert [r['conversations'][1]['value'] for r in records] == ['Yes', 'No', 'No']
    assert 'a dog' in records[0]['conversations'][0]['value']
    assert 'an umbrella' in records[1]['conversations'][0]['value']
    assert 'a dining table' in records[2]['conversations'][0]['value']
    assert [r['question_id'] for r in records] == [1, 2, 3]
    assert (records[2]['width'], records[2]['height']) == (64, 48)
    assert summary.written == {'pope': 3}
    assert dict(summary.skipped) == {
        "question is not 'Is there a/an X in the image?'": 1, 'label is neither yes nor no': 1,
        'image of unknown size': 1}
    assert_valid(out, 3)
