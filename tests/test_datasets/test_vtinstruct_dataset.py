"""``VTInstructDataset``: loading, meta.json, task filter, bad-record policy, serialization."""
import json
import pickle
import os.path as osp
import shutil
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from mmrefvlm.datasets.vtinstruct import VTInstructDataset
from mmrefvlm.registry import DATASETS

FIXTURE = Path(__file__).resolve().parents[1] / 'data' / 'vtinstruct'


def fixture_records():
    lines = (FIXTURE / 'train.jsonl').read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture
def data_root(tmp_path):
    shutil.copy(FIXTURE / 'train.jsonl', tmp_path / 'train.jsonl')
    shutil.copy(FIXTURE / 'meta.json', tmp_path / 'meta.json')
    return tmp_path


def write_jsonl(path, lines):
    path.write_text(''.join(line + '\n' for line in lines))


def corrupted_lines():
    """The fixture with line 2 a bad bbox, line 4 not JSON and line 6 a duplicate id."""
    records = fixture_records()
    lines = [json.dumps(record) for record in records]
    records[1]['instances'][0]['bbox'] = [4, 6, -20, 16]
    lines[1] = json.dumps(records[1])
    lines[3] = lines[3][:40]
    records[5]['id'] = records[0]['id']
    lines[5] = json.dumps(records[5])
    return lines


def build(data_root, **kwargs):
    # serialize_data=False by default here only to keep the tests fast (MMEngine's serialization
    # runs a full gc.collect()); serialization has its own test.
    kwargs.setdefault('serialize_data', False)
    return DATASETS.build(dict(
        type='VTInstructDataset', data_root=str(data_root), ann_file='train.jsonl',
        data_prefix=dict(img_path='imgs'), **kwargs))


def test_loads_every_fixture_record_with_joined_paths(data_root):
    records = fixture_records()
    dataset = build(data_root)
    assert len(dataset) == len(records) == 7
    for idx, record in enumerate(records):
        info = dataset[idx]  # empty pipeline: the data info itself
        assert info['img_path'] == osp.join(str(data_root), 'imgs', record['image'])
        assert info['img_id'] == info['record_id'] == record['id']
        assert info['line'] == idx + 1 and info['sample_idx'] == idx
        assert info['task'] == record['task']
        assert (info['width'], info['height']) == (record['width'], record['height'])
        assert info['instances'] == record['instances']
        assert info['prompts'] == record.get('prompts', [])
        assert info['conversations'] == record['conversations']
        # the record's offered classes, else the set's classes from meta.json
        assert info['classes'] == (record.get('classes') or dataset.metainfo['classes'])
        assert info['prompt_types'] == [p['type'] for p in record.get('prompts', [])]
        expected_depth = (None if 'depth' not in record else
                          osp.join(str(data_root), 'imgs', record['depth']))
        assert info['depth_path'] == expected_depth


def test_meta_json_lands_in_metainfo_and_config_metainfo_wins(data_root):
    meta = json.loads((FIXTURE / 'meta.json').read_text())
    dataset = build(data_root)
    for key in ('classes', 'keypoint_names', 'keypoint_sigmas', 'skeleton'):
        assert dataset.metainfo[key] == meta[key]
    dataset = build(data_root, metainfo=dict(classes=('only', )))
    assert dataset.metainfo['classes'] == ('only', )
    assert dataset.metainfo['keypoint_names'] == meta['keypoint_names']


def test_meta_keypoint_count_is_enforced(data_root):
    meta = json.loads((FIXTURE / 'meta.json').read_text())
    meta['keypoint_names'].append('hand')
    meta['keypoint_sigmas'].append(0.05)
    (data_root / 'meta.json').write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r'train.jsonl line 4: instances\[0\].keypoints: '
                       '3 keypoints but meta.json names 4'):
        build(data_root, on_bad_record='raise')


def test_task_filter_and_max_records(data_root):
    dataset = build(data_root, tasks=['rec', 'ovd', 'depth'])
    assert [dataset[i]['task'] for i in range(len(dataset))] == ['rec', 'depth', 'ovd']
    assert [dataset[i]['line'] for i in range(len(dataset))] == [1, 5, 7]
    dataset = build(data_root, tasks=['rec', 'ovd', 'depth'], max_records=2)
    assert [dataset[i]['record_id'] for i in range(len(dataset))] == ['rec_0', 'depth_0']
    with pytest.raises(ValueError, match="unknown tasks \\['detection'\\]"):
        build(data_root, tasks=['detection'])
    with pytest.raises(ValueError, match='on_bad_record'):
        build(data_root, on_bad_record='ignore')


def test_bad_records_are_skipped_with_one_summary_warning(data_root, mmengine_warnings):
    write_jsonl(data_root / 'train.jsonl', corrupted_lines())
    dataset = build(data_root)
    built = list(mmengine_warnings)
    assert [dataset[i]['line'] for i in range(len(dataset))] == [1, 3, 5, 7]
    warnings = [m for m in built if m.startswith('VTInstructDataset')]
    assert len(warnings) == 1
    message = warnings[0]
    assert 'skipped 3 bad records' in message and '(kept 4)' in message
    assert 'instances[].bbox: 1' in message and 'json: 1' in message and 'id: 1' in message
    ann_file = osp.join(str(data_root), 'train.jsonl')
    assert f'{ann_file} line 2: instances[0].bbox: box width and height must be positive' \
        in message
    assert f'{ann_file} line 4: json: not valid JSON' in message
    assert f"{ann_file} line 6: id: duplicate id 'rec_0' (first used on line 1)" in message


def test_bad_record_raises_with_file_line_and_field(data_root):
    write_jsonl(data_root / 'train.jsonl', corrupted_lines())
    ann_file = osp.join(str(data_root), 'train.jsonl')
    with pytest.raises(ValueError) as error:
        build(data_root, on_bad_record='raise')
    assert str(error.value) == (
        f'VTInstructDataset: {ann_file} line 2: instances[0].bbox: box width and height must '
        'be positive, got w=-20, h=16')
    # records of filtered-out tasks are not validated: the bad 'res' record is passed over
    write_jsonl(data_root / 'train.jsonl', corrupted_lines()[:3])
    dataset = build(data_root, on_bad_record='raise', tasks=['rec', 'reg'])
    assert [dataset[i]['record_id'] for i in range(len(dataset))] == ['rec_0', 'reg_0']


def test_pickled_copy_reads_the_same_records_without_carrying_the_index(data_root):
    dataset = build(data_root)
    copy = pickle.loads(pickle.dumps(dataset))  # what a spawned worker receives
    assert copy.data_list == [] and len(copy) == len(dataset)
    for idx in range(len(dataset)):
        assert copy.get_data_info(idx) == dataset.get_data_info(idx)
    subset = build(data_root, indices=[2, 4])
    assert [subset[i]['record_id'] for i in range(2)] == ['reg_0', 'depth_0']
    assert [subset[i]['sample_idx'] for i in range(2)] == [2, 4]
    assert len(build(data_root, indices=3)) == 3


def test_lazy_init_and_direct_construction(data_root):
    dataset = VTInstructDataset(
        ann_file=str(data_root / 'train.jsonl'), lazy_init=True, test_mode=True,
        serialize_data=False)
    assert dataset.metainfo['keypoint_names'] == ['head', 'hip', 'foot']
    dataset.full_init()
    assert len(dataset) == 7
    assert dataset[0]['img_path'] == 'images/scene.png'


def test_loading_many_lines_is_fast(tmp_path):
    """Loading opens no image (none exists here) and takes well under 1 ms per record."""
    line = (FIXTURE / 'train.jsonl').read_text().splitlines()[6]
    record = json.loads(line)
    lines = []
    for i in range(4000):
        record['id'] = f'ovd_{i}'
        lines.append(json.dumps(record))
    write_jsonl(tmp_path / 'train.jsonl', lines)
    start = time.perf_counter()
    dataset = VTInstructDataset(ann_file=str(tmp_path / 'train.jsonl'), serialize_data=False)
    elapsed = time.perf_counter() - start
    assert len(dataset) == 4000
    assert elapsed < 8.0


def _many_lines(count):
    record = fixture_records()[6]
    for i in range(count):
        record['id'] = f'ovd_{i}'
        yield json.dumps(record)


def test_index_is_cached_beside_the_file_and_rebuilt_when_it_changes(data_root, monkeypatch):
    build(data_root)
    assert (data_root / 'train.jsonl.index.npy').is_file()
    built = (data_root / 'train.jsonl.index.json').stat().st_mtime_ns
    import mmrefvlm.datasets.record_index as record_index
    calls = []
    original = record_index.build_index
    monkeypatch.setattr(record_index, 'build_index',
                        lambda *args: calls.append(args) or original(*args))
    assert len(build(data_root)) == 7 and calls == []  # the cache is current
    write_jsonl(data_root / 'train.jsonl', list(_many_lines(3)))
    assert [build(data_root)[i]['record_id'] for i in range(3)] == ['ovd_0', 'ovd_1', 'ovd_2']
    assert len(calls) == 1
    assert (data_root / 'train.jsonl.index.json').stat().st_mtime_ns != built
    # a cache directory keeps the data directory untouched
    cache = data_root / 'cache'
    build(data_root, index_dir=str(cache))
    assert len(list(cache.glob('train.jsonl.*.index.npy'))) == 1


def _held_bytes(dataset):
    """Bytes the dataset object owns: its pickled state plus in-memory index arrays (the rows
    are a memory map of the cached index, owned by the page cache)."""
    assert isinstance(dataset._rows, np.memmap)
    kept = 0 if dataset._kept is None else dataset._kept.nbytes
    return len(pickle.dumps(dataset)) + kept


def test_dataset_memory_does_not_grow_with_the_record_count(tmp_path):
    held = {}
    for count in (1000, 20000):
        root = tmp_path / str(count)
        root.mkdir()
        write_jsonl(root / 'train.jsonl', list(_many_lines(count)))
        VTInstructDataset(ann_file=str(root / 'train.jsonl'))  # builds the index
        tracemalloc.start()
        dataset = VTInstructDataset(ann_file=str(root / 'train.jsonl'))
        allocated = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert len(dataset) == count
        assert dataset[count - 1]['record_id'] == f'ovd_{count - 1}'
        held[count] = (_held_bytes(dataset), allocated)
    assert held[20000][0] == pytest.approx(held[1000][0], abs=64)
    assert held[20000][1] < held[1000][1] + 64 * 1024  # 20x the records, no more memory
