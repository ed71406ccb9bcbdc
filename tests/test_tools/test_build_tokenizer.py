"""``tools/misc/build_tokenizer.py`` names the file and line of a line it cannot read."""
import importlib.util
import os.path as osp

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool():
    spec = importlib.util.spec_from_file_location(
        'build_tokenizer', osp.join(REPO, 'tools', 'misc', 'build_tokenizer.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_invalid_utf8_and_json_name_their_line(tmp_path):
    tool = load_tool()
    path = tmp_path / 'train.jsonl'
    path.write_bytes(b'{"id": "a"}\n\n{"id": "caf\xe9"}\n')
    with pytest.raises(ValueError, match=r"train.jsonl line 3: not valid UTF-8: byte 12 "):
        list(tool.read_records(str(path)))
    path.write_bytes(b'{"id": "a"}\n{"id": \n')
    with pytest.raises(ValueError, match=r'train.jsonl line 2: Expecting value'):
        list(tool.read_records(str(path)))
    path.write_bytes(b'{"id": "a"}\n\n')
    assert list(tool.read_records(str(path))) == [(1, {'id': 'a'})]
