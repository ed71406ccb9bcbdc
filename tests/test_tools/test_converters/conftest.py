"""Fixtures of the converter tests: load a ``tools/dataset_converters`` CLI, run it in-process,
read and validate what it wrote."""
import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
TOOLS = REPO / 'tools' / 'dataset_converters'
DATA = REPO / 'tests' / 'data' / 'converters'


def load_tool(name: str):
    """Import ``tools/dataset_converters/{name}.py`` as a module."""
    spec = importlib.util.spec_from_file_location(name, TOOLS / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tool_module():
    """``tool_module(name)``: ``tools/dataset_converters/{name}.py`` as a module."""
    return load_tool


@pytest.fixture
def data_dir():
    return DATA


@pytest.fixture
def convert(tmp_path):
    """``convert(tool, *args) -> (records, summary, out_path)``: run a converter's ``main``."""

    def run(tool: str, *args: str, out_name: str = 'out.jsonl'):
        out = tmp_path / 'vt' / out_name
        summary = load_tool(tool).main([*map(str, args), '--out', str(out)])
        records = [json.loads(line) for line in out.read_text().splitlines()]
        return records, summary, out

    return run


@pytest.fixture
def assert_valid():
    """Assert that ``validate_vtinstruct.validate_file`` finds no fault in a file (the
    converters' test data have no image files: none is opened)."""
    validator = load_tool('validate_vtinstruct')

    def check(path: Path, num_records: int) -> None:
        faults, summary = validator.validate_file(str(path), images='none')
        assert faults == []
        assert summary['records'] == num_records

    return check
