"""``tools/dataset_converters/validate_vtinstruct.py``: ``validate_file`` and the CLI."""
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmrefvlm.datasets import TASKS
from mmrefvlm.trp import TRPParseError, parse_answer

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / 'tools' / 'dataset_converters' / 'validate_vtinstruct.py'
FIXTURE = REPO / 'tests' / 'data' / 'vtinstruct'
BROKEN_TRP = '<Phrase>stick figure(<Unit>keypoint</Unit>[0]<REF>)'


def load_tool():
    spec = importlib.util.spec_from_file_location('validate_vtinstruct', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = load_tool()


def fixture_records():
    return [json.loads(line) for line in (FIXTURE / 'train.jsonl').read_text().splitlines()]


@pytest.fixture
def clean(tmp_path):
    """The fixture set copied to ``tmp_path``, with its image and depth map generated."""
    shutil.copy(FIXTURE / 'train.jsonl', tmp_path / 'train.jsonl')
    shutil.copy(FIXTURE / 'meta.json', tmp_path / 'meta.json')
    (tmp_path / 'images').mkdir()
    (tmp_path / 'depth').mkdir()
    Image.new('RGB', (64, 48), (200, 30, 30)).save(tmp_path / 'images' / 'scene.png')
    depth = np.full((48, 64), 2500, dtype=np.uint16)
    Image.fromarray(depth).save(tmp_path / 'depth' / 'scene.png')
    return tmp_path / 'train.jsonl'


def broken_parse_message():
    with pytest.raises(TRPParseError) as error:
        parse_answer(BROKEN_TRP)
    assert error.value.offset == BROKEN_TRP.index('<Unit>')
    return f'answer does not parse: {error.value}'


def write_corrupted(path):
    """Corrupt a copy of the fixture (line 9 stays clean, line 10 is blank); return the expected
    ``(line, field, message)`` faults."""
    records = fixture_records()
    records[0]['conversations'][1]['refs'] = [0, 0]
    records[1]['instances'][0]['bbox'] = [4, 6, -3, 16]
    records[2]['task'] = 'regx'
    records[3]['conversations'][1]['value'] = BROKEN_TRP
    records[4]['conversations'][0]['value'] = 'Estimate the depth.'
    records[6]['id'] = 'rec_0'
    region_mismatch = json.loads(json.dumps(fixture_records()[2]))
    region_mismatch['id'] = 'reg_1'
    region_mismatch['conversations'][0]['value'] = '<image>\nWhat is in <region> and <region>?'
    clean_copy = dict(fixture_records()[5], id='caption_1')
    lines = [json.dumps(record) for record in records] + [
        json.dumps(region_mismatch), json.dumps(clean_copy), '']
    lines[5] = lines[5][:-3]
    path.write_text('\n'.join(lines) + '\n')
    expected = [
        (1, 'conversations[1].refs', "'refs' has 2 entries but the answer has 1 <REF> tokens"),
        (2, 'instances[0].bbox', 'box width and height must be positive, got w=-3, h=16'),
        (3, 'task', f"unknown task 'regx'; known tasks: {', '.join(TASKS)}"),
        (4, 'conversations[1].value', broken_parse_message()),
        (4, 'conversations', "task 'ig_keypoint' decodes 'keypoint' but no answer has a triplet"),
        (5, 'conversations', '<image> must appear exactly once in the conversation, found 0 times'),
        (6, 'json', None),
        (7, 'id', "duplicate id 'rec_0' (first used on line 1)"),
        (8, 'prompts', "human turns have 2 <region> tokens but 'prompts' has 1 entries"),
    ]
    return expected


def as_triples(faults):
    return [(line, fault.field, fault.message) for line, fault in faults]


def test_clean_fixture_and_its_summary(clean):
    faults, summary = tool.validate_file(str(clean), images='decode')
    assert faults == []
    records = fixture_records()
    assert summary['records'] == len(records) and summary['faulty'] == 0
    assert set(summary['tasks']) == {record['task'] for record in records}
    for record in records:
        row = summary['tasks'][record['task']]
        answers = [t['value'] for t in record['conversations'] if t['from'] == 'gpt']
        assert row['records'] == 1 and row['faulty'] == 0
        assert row['refs'] == sum(len(re.findall('<REF>', a)) for a in answers)
        assert row['triplets'] == sum(len(re.findall('<Unit>', a)) for a in answers)
        kinds = [p['type'] for p in record.get('prompts', [])]
        assert row['prompts'] == {kind: kinds.count(kind) for kind in kinds}
    table = tool.format_summary(summary)
    assert re.search(r'^ovd\s+1\s+0\s+2\s+2\s', table, re.M)
    assert re.search(r'^total\s+7\s+0\s+', table, re.M)


def test_corrupted_copy_yields_exactly_the_expected_faults(tmp_path):
    path = tmp_path / 'train.jsonl'
    expected = write_corrupted(path)
    shutil.copy(FIXTURE / 'meta.json', tmp_path / 'meta.json')
    faults, summary = tool.validate_file(str(path), images='none')
    got = as_triples(faults)
    assert [(line, field) for line, field, _ in got] == [(l, f) for l, f, _ in expected]
    for (_, _, message), (_, _, wanted) in zip(got, expected):
        if wanted is None:
            assert message.startswith('not valid JSON: ')
        else:
            assert message == wanted
    assert summary['records'] == 9 and summary['faulty'] == 8
    assert summary['tasks']['<unknown>']['faulty'] == 1
    assert summary['tasks']['regx'] == dict(records=1, faulty=1, triplets=0, refs=0,
                                            prompts={'box': 1})


def test_image_checks_find_missing_and_mis_sized_files(clean):
    Image.fromarray(np.zeros((48, 32), dtype=np.uint16)).save(clean.parent / 'depth' / 'scene.png')
    depth = str(clean.parent / 'depth' / 'scene.png')
    for images in ('header', 'decode'):
        faults, _ = tool.validate_file(str(clean), images=images)
        assert as_triples(faults) == [
            (5, 'depth', f'{depth} is 32x48 but the record says 64x48 (width x height)')]
    (clean.parent / 'images' / 'scene.png').unlink()
    faults, _ = tool.validate_file(str(clean), image_root=str(clean.parent))
    assert [(line, fault.field) for line, fault in faults] == [
        (1, 'image'), (2, 'image'), (3, 'image'), (4, 'image'), (5, 'image'), (5, 'depth'),
        (6, 'image'), (7, 'image')]
    assert faults[0][1].message == f"{clean.parent / 'images' / 'scene.png'} does not exist"
    assert tool.validate_file(str(clean), images='none')[0] == []
    with pytest.raises(ValueError, match="images must be one of"):
        tool.validate_file(str(clean), images='full')


def test_meta_argument_overrides_the_file_beside(clean, tmp_path):
    faults, _ = tool.validate_file(str(clean), meta={'keypoint_names': ['a', 'b']})
    assert as_triples(faults) == [
        (4, 'instances[0].keypoints',
         '3 keypoints but meta.json names 2 (9 numbers instead of 6)')]


def test_main_limits_printed_faults(tmp_path, capsys):
    path = tmp_path / 'train.jsonl'
    write_corrupted(path)
    assert tool.main([str(path), '--skip-images', '--max-faults', '2']) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f'{path}:1: conversations[1].refs: ')
    assert out[1].startswith(f'{path}:2: instances[0].bbox: ')
    assert out[2] == '... 7 more faults not shown (--max-faults)'
    assert out[-1] == '9 faults in 8 of 9 records'


def start_cli(*args):
    return subprocess.Popen([sys.executable, str(TOOL), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)


@pytest.mark.slow
def test_cli_exit_status_and_fault_lines(clean, tmp_path):
    """Both runs go in parallel: each subprocess pays the full ``import mmrefvlm``."""
    bad = tmp_path / 'bad.jsonl'
    expected = write_corrupted(bad)
    clean_run = start_cli(str(clean), '--check-images', '--meta', str(FIXTURE / 'meta.json'))
    bad_run = start_cli(str(bad), '--skip-images')
    clean_out, clean_err = clean_run.communicate(timeout=600)
    bad_out, bad_err = bad_run.communicate(timeout=600)

    assert clean_run.returncode == 0, clean_out + clean_err
    assert not [line for line in clean_out.splitlines() if line.startswith(str(clean))]
    assert clean_out.splitlines()[-1] == '0 faults in 0 of 7 records'

    assert bad_run.returncode == 1, bad_err
    lines = bad_out.splitlines()
    printed = [line for line in lines if line.startswith(f'{bad}:')]
    assert len(printed) == len(expected)
    for (line, field, message), text in zip(expected, printed):
        prefix = f'{bad}:{line}: {field}: '
        assert text.startswith(prefix)
        assert message is None or text == prefix + message
    header = lines[lines.index(printed[-1]) + 1]
    assert header.split()[:5] == ['task', 'records', 'faulty', 'triplets', '<REF>s']
    assert lines[-1] == '9 faults in 8 of 9 records'


BAD_CORPUS = REPO / 'tests' / 'data' / 'bad_vtinstruct'


def test_bad_corpus_faults_by_image_check():
    """Every fault of the bad-input corpus (its README) with its line; the clean lines (1, 11,
    12) stay clean. Truncated files need the full decode; the others show in the header read."""
    images = BAD_CORPUS / 'images'
    header = [
        (2, 'encoding'), (3, 'conversations[1].value'), (4, 'conversations[1].value'),
        (4, 'conversations[1].value'), (5, 'image'), (6, 'image'), (7, 'image'), (10, 'image')]
    decode = header[:7] + [(8, 'image'), (9, 'image'), (10, 'image')]
    faults = {images: tool.validate_file(str(BAD_CORPUS / 'train.jsonl'), images=images)[0]
              for images in ('none', 'header', 'decode')}
    assert [(line, fault.field) for line, fault in faults['none']] == header[:4]
    assert [(line, fault.field) for line, fault in faults['header']] == header
    assert [(line, fault.field) for line, fault in faults['decode']] == decode
    messages = dict((line, fault.message) for line, fault in faults['decode'] if line >= 5)
    assert messages == {
        5: f'{images}/missing.png does not exist',
        6: f'{images}/empty.png is empty (0 bytes)',
        7: f'{images}/not_an_image.png cannot be decoded as an image (unknown format)',
        8: f'{images}/truncated.jpg is truncated (no JPEG end-of-image marker)',
        9: f'{images}/truncated.png is truncated (no PNG IEND chunk)',
        10: f'{images}/small.png is 32x24 but the record says 64x48 (width x height)'}
    _, summary = tool.validate_file(str(BAD_CORPUS / 'train.jsonl'), images='decode')
    assert summary['records'] == 12 and summary['faulty'] == 9
