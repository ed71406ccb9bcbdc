"""``flickr30k2vtinstruct.py``: Flickr30k-Entities sentences + boxes → gcg_box."""
from mmrefvlm.datasets.converters import parse_sentence
from mmrefvlm.trp import parse_answer, strip_tags


def test_parse_sentence_spans():
    caption, phrases = parse_sentence('[/EN#5/people/bodyparts The men] sit on [/EN#6/scene a '
                                      'bench] .')
    assert caption == 'The men sit on a bench .'
    assert [(caption[s:e], entity, kind) for s, e, entity, kind in phrases] == [
        ('The men', '5', 'people'), ('a bench', '6', 'scene')]


def test_flickr30k_records_one_to_many(convert, data_dir, assert_valid):
    root = data_dir / 'flickr30k'
    records, summary, out = convert('flickr30k2vtinstruct', root, '--split-file',
                                    root / 'val.txt')
    assert [r['id'] for r in records] == ['flickr30k_1001_0', 'flickr30k_1001_2',
                                          'flickr30k_1002_0']
    first = records[0]
    assert first['image'] == 'flickr30k-images/1001.jpg'
    assert (first['width'], first['height']) == (100, 80)
    # entity 5 has two boxes (one-to-many), entity 6 shares its box with entity 7
    assert [(i['category'], i['bbox']) for i in first['instances']] == [
        ('people', [10, 10, 30, 40]), ('people', [50, 10, 40, 50]), ('scene', [0, 60, 100, 20])]
    answer = first['conversations'][1]
    assert strip_tags(answer['value']) == 'Two men stand on a grassy field .'
    assert [(t.phrase, t.num_refs) for t in parse_answer(answer['value'])] == [
        ('Two men', 2), ('a grassy field', 1)]
    assert answer['refs'] == [0, 1, 2]
    third_sentence = records[1]['conversations'][1]
    # 'a pole' has an empty box: it stays plain text
    assert [t.phrase for t in parse_answer(third_sentence['value'])] == ['The men', 'the ground']
    assert 'near a pole .' in third_sentence['value'] and third_sentence['refs'] == [0, 1, 2]
    assert records[2]['instances'] == [{'bbox': [5, 5, 25, 35], 'category': 'animals'}]
    assert summary.written == {'gcg_box': 3}
    assert dict(summary.skipped) == {
        'sentence without a grounded phrase': 1, 'empty box': 1,
        'image without a sentence or an annotation file': 1}
    assert_valid(out, 3)
