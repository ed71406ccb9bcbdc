"""The synthetic generator: determinism, exact ground truth, valid records, every task."""
import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from mmrefvlm.datasets import TASKS
from mmrefvlm.datasets.record import validate_record
from mmrefvlm.datasets.synthetic import COLOURS, KEYPOINT_NAMES, generate, task_schedule
from mmrefvlm.datasets.synthetic import generator as generator_module
from mmrefvlm.trp import parse_answer

NUM_TRAIN, NUM_VAL = 40, 20


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp('synthetic')
    summary = generate(out, num_train=NUM_TRAIN, num_val=NUM_VAL, seed=3, image_size=96)
    return out, summary


def load(out: Path, split: str):
    return [json.loads(line) for line in (out / f'{split}.jsonl').read_text().splitlines()]


def decode(rle):
    return mask_utils.decode(dict(rle, counts=rle['counts'].encode())).astype(bool)


def test_layout_summary_and_meta(dataset):
    out, summary = dataset
    assert summary['skipped'] is False
    assert sum(summary['records']['train'].values()) == NUM_TRAIN
    assert sum(summary['records']['val'].values()) == NUM_VAL
    meta = json.loads((out / 'meta.json').read_text())
    assert meta['keypoint_names'] == list(KEYPOINT_NAMES)
    assert len(meta['keypoint_sigmas']) == len(KEYPOINT_NAMES)
    assert all(0 <= i < len(KEYPOINT_NAMES) for edge in meta['skeleton'] for i in edge)
    for split, num in (('train', NUM_TRAIN), ('val', NUM_VAL)):
        records = load(out, split)
        assert len(records) == num and len({r['id'] for r in records}) == num
        for record in records:
            assert Image.open(out / record['image']).size == (96, 96)
            assert (out / record['image'].replace('images/', 'depth/')).is_file()
            categories = {inst['category'] for inst in record['instances']} - {'depth map'}
            assert categories <= set(meta['classes'])


def test_every_task_appears_and_rec_res_dominate(dataset):
    out, _ = dataset
    counts = Counter(r['task'] for r in load(out, 'train'))
    assert set(counts) == set(TASKS)
    assert counts['rec'] > counts['caption'] and counts['res'] > counts['depth']


def test_records_are_valid_with_matching_refs(dataset):
    out, _ = dataset
    meta = json.loads((out / 'meta.json').read_text())
    many = 0
    for record in load(out, 'train') + load(out, 'val'):
        assert validate_record(record, meta) == [], record['id']
        for turn in record['conversations'][1::2]:
            triplets = parse_answer(turn['value'])
            assert turn['value'].count('<REF>') == len(turn.get('refs', []))
            assert sum(t.num_refs for t in triplets) == len(turn.get('refs', []))
            many += sum(t.num_refs > 1 for t in triplets)
            for triplet in triplets:  # a group's refs are instances of one concept
                refs = [turn['refs'][i] for i in triplet.ref_ordinals]
                assert len({record['instances'][i]['category'] for i in refs}) == 1
        for turn in record['conversations'][0::2]:
            assert not any(tag in turn['value'] for tag in ('<REF>', '<Phrase>', '<Unit>',
                                                            '<Task>'))
    assert many >= 5  # one-to-many triplets are common


def test_ground_truth_is_exact(dataset):
    out, _ = dataset
    for record in load(out, 'train'):
        image = np.asarray(Image.open(out / record['image']).convert('RGB'))
        depth = np.asarray(Image.open(out / record['image'].replace('images/', 'depth/')))
        assert depth.dtype == np.uint16
        instances = [i for i in record['instances'] if 'segmentation' in i]
        masks = [decode(inst['segmentation']) for inst in instances]
        covered = np.zeros(depth.shape, dtype=int)
        for inst, mask in zip(instances, masks):
            assert mask.any()
            assert inst['bbox'] == mask_utils.toBbox(
                dict(inst['segmentation'], counts=inst['segmentation']['counts'].encode())
            ).tolist()
            rows, cols = np.nonzero(mask)
            assert inst['bbox'] == [cols.min(), rows.min(), cols.max() - cols.min() + 1,
                                    rows.max() - rows.min() + 1]
            assert np.all(depth[mask] == round(inst['depth'] * 1000))
            colour = np.array(COLOURS[inst['category'].split(' ')[0]])
            share = np.all(image[mask] == colour, axis=1).mean()
            assert share > 0.3  # the rest is the darker outline
            covered += mask
        assert covered.max() <= 1  # visible masks are disjoint
        if instances:
            background = depth[covered == 0]
            assert background.min() > max(inst['depth'] for inst in instances) * 1000


def test_keypoint_visibility_matches_occlusion(dataset):
    out, _ = dataset
    checked = Counter()
    for record in load(out, 'train') + load(out, 'val'):
        instances = record['instances']
        masks = [decode(i['segmentation']) if 'segmentation' in i else None for i in instances]
        for inst in instances:
            if 'keypoints' not in inst:
                continue
            points = np.array(inst['keypoints']).reshape(-1, 3)
            assert len(points) == len(KEYPOINT_NAMES)
            for x, y, v in points:
                checked[v] += 1
                if v == 0:
                    assert (x, y) == (0, 0)
                    continue
                assert 0 <= x < record['width'] and 0 <= y < record['height']
                nearer = [m for other, m in zip(instances, masks) if m is not None
                          and other.get('depth', 1e9) < inst['depth'] and m[y, x]]
                assert bool(nearer) == (v == 1)
    assert checked[2] > 0


def test_same_seed_same_bytes_other_seed_other_bytes(dataset, tmp_path):
    out, _ = dataset
    again = tmp_path / 'again'
    generate(again, num_train=NUM_TRAIN, num_val=NUM_VAL, seed=3, image_size=96)
    for split in ('train', 'val'):
        assert (out / f'{split}.jsonl').read_bytes() == (again / f'{split}.jsonl').read_bytes()
    for path in sorted((out / 'images').rglob('*.png')) + sorted((out / 'depth').rglob('*.png')):
        assert path.read_bytes() == (again / path.relative_to(out)).read_bytes()
    other = tmp_path / 'other'
    generate(other, num_train=5, num_val=1, seed=4, image_size=96)
    assert (out / 'images/train/000000.png').read_bytes() != \
        (other / 'images/train/000000.png').read_bytes()
    assert (out / 'images/train/000000.png').read_bytes() != \
        (out / 'images/val/000000.png').read_bytes()


def test_second_run_is_skipped_and_new_arguments_regenerate(tmp_path):
    first = generate(tmp_path, num_train=3, num_val=2, seed=1, image_size=64, tasks=['rec'])
    stamp = (tmp_path / 'train.jsonl').stat().st_mtime_ns
    second = generate(tmp_path, num_train=3, num_val=2, seed=1, image_size=64, tasks=['rec'])
    assert (first['skipped'], second['skipped']) == (False, True)
    assert (tmp_path / 'train.jsonl').stat().st_mtime_ns == stamp
    third = generate(tmp_path, num_train=4, num_val=2, seed=1, image_size=64, tasks=['rec'])
    assert third['skipped'] is False and len(load(tmp_path, 'train')) == 4
    assert {r['task'] for r in load(tmp_path, 'train')} == {'rec'}


def test_changed_generator_code_regenerates(tmp_path, monkeypatch):
    generate(tmp_path, num_train=2, num_val=1, seed=1, image_size=64, tasks=['rec'])
    assert generate(tmp_path, num_train=2, num_val=1, seed=1, image_size=64,
                    tasks=['rec'])['skipped'] is True
    monkeypatch.setattr(generator_module, 'code_fingerprint', lambda: 'edited')
    again = generate(tmp_path, num_train=2, num_val=1, seed=1, image_size=64, tasks=['rec'])
    assert again['skipped'] is False and again['arguments']['code'] == 'edited'


def test_code_fingerprint_follows_file_contents(tmp_path):
    (tmp_path / 'pkg').mkdir()
    (tmp_path / 'pkg' / 'a.py').write_text('A = 1\n')
    (tmp_path / 'pkg' / 'notes.txt').write_text('not code')
    first = generator_module.code_fingerprint(tmp_path, ['pkg'])
    assert generator_module.code_fingerprint(tmp_path, ['pkg']) == first
    (tmp_path / 'pkg' / 'notes.txt').write_text('still not code')
    assert generator_module.code_fingerprint(tmp_path, ['pkg']) == first
    (tmp_path / 'pkg' / 'a.py').write_text('A = 2\n')
    assert generator_module.code_fingerprint(tmp_path, ['pkg']) != first
    # the shipped packages exist and are read
    assert generator_module.code_fingerprint() != generator_module.code_fingerprint(
        tmp_path, ['pkg'])
    assert all((generator_module._PACKAGE_ROOT / p).is_dir()
               for p in generator_module.CODE_PACKAGES)


def test_task_selection_and_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='unknown task'):
        generate(tmp_path, num_train=1, num_val=1, tasks=['rec', 'segment'])
    with pytest.raises(ValueError, match='positive sum'):
        generate(tmp_path, num_train=1, num_val=1, tasks=['rec'], task_weights={'rec': 0})


def test_task_schedule_follows_weights():
    schedule = task_schedule(100, {'rec': 3.0, 'res': 1.0, 'pope': 0.0}, random.Random(0))
    assert Counter(schedule) == {'rec': 75, 'res': 25}
    few = task_schedule(3, {'a': 1.0, 'b': 1.0, 'c': 1.0, 'd': 5.0}, random.Random(0))
    assert len(few) == 3
    every = task_schedule(17, dict.fromkeys(TASKS, 1.0) | {'rec': 20.0}, random.Random(0))
    assert set(every) == set(TASKS)


def test_held_out_rec_names_one_object_and_training_keeps_groups(tmp_path):
    """REC is scored as in RefCOCO (one referent per expression): every val REC turn refers to
    exactly one object; training REC still has group expressions (one-to-many triplets)."""
    generate(tmp_path, num_train=60, num_val=40, seed=5, image_size=64, tasks=['rec'])

    def refs_per_turn(split):
        lines = (tmp_path / f'{split}.jsonl').read_text().splitlines()
        return [len(turn['refs']) for line in lines
                for turn in json.loads(line)['conversations'] if turn['from'] == 'gpt']

    assert set(refs_per_turn('val')) == {1}
    assert max(refs_per_turn('train')) > 1


def test_grounding_rounds_ask_distinct_expressions_in_training_only(tmp_path):
    """``grounding_rounds=3``: every REC/RES training record asks up to three distinct
    expressions, each answered with its own targets; held-out records are byte-identical to a
    one-round set (the benchmark protocol is unchanged)."""
    one, three = tmp_path / 'one', tmp_path / 'three'
    generate(one, num_train=30, num_val=20, seed=2, image_size=64, tasks=['rec', 'res'])
    summary = generate(three, num_train=30, num_val=20, seed=2, image_size=64,
                       tasks=['rec', 'res'], grounding_rounds=3)
    assert summary['arguments']['grounding_rounds'] == 3
    assert (one / 'val.jsonl').read_bytes() == (three / 'val.jsonl').read_bytes()
    rounds = []
    for record in load(three, 'train'):
        assert validate_record(record) == [], record["id"]
        answers = [turn['value'] for turn in record['conversations'] if turn['from'] == 'gpt']
        phrases = [parse_answer(answer)[0].phrase for answer in answers]
        assert len(set(phrases)) == len(phrases)
        rounds.append(len(answers))
    assert max(rounds) == 3 and sum(r == 3 for r in rounds) > len(rounds) // 2
    with pytest.raises(ValueError, match='grounding_rounds'):
        generate(tmp_path / 'bad', num_train=2, num_val=2, grounding_rounds=0)
