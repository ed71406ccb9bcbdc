"""``mmrefvlm.datasets.converters.output``: validated writing, skip counting, per-record seeds."""
import json

from mmrefvlm.datasets.converters import ConversionSummary, record_rng, write_jsonl
from mmrefvlm.datasets.renderers import ImageInfo, render_ovd, render_rec

IMAGE = ImageInfo(id='img', path='img.jpg', width=64, height=48)
DOG = {'bbox': [4.0, 6.0, 20.0, 10.0], 'category': 'dog'}


def test_write_jsonl_drops_invalid_and_duplicate_records(tmp_path):
    good = render_rec(IMAGE, [DOG], 'the dog', [0], record_rng(0, 'a'), record_id='a')
    # ovd with only absent classes: a text-only negative, which is a valid record
    negative = render_ovd(IMAGE, [DOG], record_rng(0, 'b'), classes=['cat'], record_id='b')
    broken = dict(good, id='c', instances=[dict(DOG, bbox=[4.0, 6.0, 0.0, 10.0])])
    summary = ConversionSummary()
    out = tmp_path / 'sub' / 'out.jsonl'
    write_jsonl(str(out), [good, negative, broken, dict(good)], summary)
    assert [json.loads(line)['id'] for line in out.read_text().splitlines()] == ['a', 'b']
    assert summary.written == {'rec': 1, 'ovd': 1}
    assert dict(summary.skipped) == {'invalid record (instances[0].bbox)': 1,
                                     'duplicate record id': 1}
    text = summary.format('out.jsonl')
    assert text.splitlines()[0] == 'out.jsonl: 2 records written'
    assert '2 skipped' in text and 'duplicate record id: 1' in text


def test_record_rng_depends_on_seed_and_key_only():
    draws = [record_rng(seed, key).random() for seed, key in ((0, 'x'), (0, 'x'), (1, 'x'),
                                                              (0, 'y'))]
    assert draws[0] == draws[1] and len(set(draws)) == 3
