"""Bad data is named and handled: the corpus of ``tests/data/bad_vtinstruct`` (one fault per
line, see its README) through record reading, image loading and the ``on_bad_record`` policy."""
import shutil
from pathlib import Path

import pytest
from mmengine.registry import init_default_scope

from mmrefvlm.datasets.bad_samples import SkippedSample, skip_or_raise
from mmrefvlm.datasets.image_files import ImageFileError
from mmrefvlm.datasets.record import RecordDecodeError, decode_line, read_records
from mmrefvlm.datasets.transforms import LoadVTInstructImage
from mmrefvlm.registry import DATASETS

CORPUS = Path(__file__).resolve().parents[1] / 'data' / 'bad_vtinstruct'
IMAGE_FAULTS = {
    5: ('missing.png', 'does not exist'),
    6: ('empty.png', 'is empty (0 bytes)'),
    7: ('not_an_image.png', 'cannot be decoded as an image'),
    8: ('truncated.jpg', 'is truncated (no JPEG end-of-image marker)'),
    9: ('truncated.png', 'is truncated (no PNG IEND chunk)'),
    10: ('small.png', 'is 32x24 but the record says 64x48 (width x height)'),
}

@pytest.fixture
def warnings(mmengine_warnings):
    """The warnings logged to MMEngine's current logger during the test."""
    return mmengine_warnings


def corpus_copy(root: Path, keep_bad_utf8: bool = True) -> Path:
    """The corpus copied to ``root``; without ``keep_bad_utf8`` line 2 is blank (line numbers
    stay those of the README)."""
    shutil.copytree(CORPUS, root, dirs_exist_ok=True)
    if not keep_bad_utf8:
        lines = (root / 'train.jsonl').read_bytes().split(b'\n')
        lines[1] = b''
        (root / 'train.jsonl').write_bytes(b'\n'.join(lines))
    return root


def build(root: Path, **kwargs):
    init_default_scope('mmrefvlm')
    return DATASETS.build(dict(type='VTInstructDataset', data_root=str(root),
                               ann_file='train.jsonl', serialize_data=False, **kwargs))


def test_invalid_utf8_is_a_fault_of_its_line_and_the_rest_decodes():
    with open(CORPUS / 'train.jsonl', 'rb') as lines:
        read = list(read_records(lines))
    assert [line for line, _, _ in read] == list(range(1, 13))
    line, record, faults = read[1]
    assert record is None and [f.field for f in faults] == ['encoding']
    assert faults[0].message.startswith("not valid UTF-8: byte ")
    assert "b'\\xe9'" in faults[0].message
    assert all(record is not None for _, record, _ in read[2:])
    assert not read[0][2] and not read[-1][2] and not read[10][2]
    with pytest.raises(RecordDecodeError, match=r"byte 4 of the line \(b'\\xff'"):
        decode_line(b'{"a\xff": 1}')
    assert decode_line('{"é": 1}'.encode()) == '{"é": 1}'


def test_unknown_units_are_rejected_in_composites_and_text_only_answers():
    with open(CORPUS / 'train.jsonl', 'rb') as lines:
        faults = {line: [str(f) for f in record_faults]
                  for line, _, record_faults in read_records(lines)}
    known = 'known units: box, mask, keypoint, depth'
    assert faults[3] == ["conversations[1].value: triplet 'the red square' has unknown unit "
                         f"'polygon'; {known}"]
    assert faults[4] == [
        f"conversations[1].value: triplet 'red square' has unknown unit 'polygon'; {known}",
        "conversations[1].value: task 'caption' answers in text only but triplet 'red square' "
        "decodes 'polygon'"]


@pytest.mark.parametrize('line', sorted(IMAGE_FAULTS))
def test_image_loading_names_the_file_and_the_fault(line):
    name, problem = IMAGE_FAULTS[line]
    path = str(CORPUS / 'images' / name)
    with pytest.raises(ImageFileError) as error:
        LoadVTInstructImage()(dict(img_path=path, width=64, height=48))
    assert error.value.path == path and error.value.problem.startswith(problem)
    assert str(error.value).startswith(f'{path} {problem}')


def test_image_loading_keeps_a_good_image():
    results = LoadVTInstructImage()(dict(img_path=str(CORPUS / 'images' / 'scene.png'),
                                         width=64, height=48))
    assert results['img'].shape == (48, 64, 3) and results['ori_shape'] == (48, 64)


def test_training_skips_bad_images_with_file_line_and_path(tmp_path, warnings):
    root = corpus_copy(tmp_path, keep_bad_utf8=False)
    dataset = build(root, pipeline=[dict(type='LoadVTInstructImage')])
    lines = [dataset.get_data_info(i)['line'] for i in range(len(dataset))]
    assert lines == [1, 5, 6, 7, 8, 9, 10, 11, 12]  # 3 and 4: unknown units, skipped at load
    for index, line in enumerate(lines):
        if line in IMAGE_FAULTS:
            assert dataset.prepare_data(index) is None
            name, problem = IMAGE_FAULTS[line]
            assert warnings[-1].startswith(
                f"VTInstructDataset: {root / 'train.jsonl'} line {line}: "
                f"{root / 'images' / name} {problem}")
            assert warnings[-1].endswith('(skipped)')
            assert dataset[index]['img'].shape == (48, 64, 3)  # another sample is drawn
        else:
            assert dataset.prepare_data(index)['img'].shape == (48, 64, 3)


def test_skip_or_raise_follows_the_policy(warnings):
    error = ValueError('bad')
    assert skip_or_raise('f.jsonl line 3: bad', error, 'skip', test_mode=False) is None
    assert skip_or_raise('f.jsonl line 3: bad', error, 'skip', test_mode=True) == SkippedSample(
        'f.jsonl line 3: bad')
    assert warnings == ['f.jsonl line 3: bad (skipped)'] * 2
    with pytest.raises(ValueError, match='^f.jsonl line 3: bad$'):
        skip_or_raise('f.jsonl line 3: bad', error, 'raise', test_mode=True)
    with pytest.raises(ValueError, match='on_bad_record must be one of'):
        skip_or_raise('m', error, 'ignore', test_mode=False)


def test_dataset_skips_an_invalid_utf8_line_and_loads_the_rest(tmp_path, warnings):
    dataset = build(corpus_copy(tmp_path))
    assert [dataset[i]['line'] for i in range(len(dataset))] == [1, 5, 6, 7, 8, 9, 10, 11, 12]
    assert any('line 2: encoding: not valid UTF-8' in message for message in warnings)


def test_test_mode_skips_and_reports_bad_images(tmp_path, warnings):
    root = corpus_copy(tmp_path, keep_bad_utf8=False)
    dataset = build(root, test_mode=True, pipeline=[dict(type='LoadVTInstructImage')])
    samples = [dataset[i] for i in range(len(dataset))]
    skipped = [s for s in samples if isinstance(s, SkippedSample)]
    assert len(skipped) == len(IMAGE_FAULTS) == len(samples) - 3
    assert 'line 5: ' in skipped[0].message and 'missing.png does not exist' in skipped[0].message
