"""tools/dataset_converters/generate_synthetic.py: argument parsing and a tiny run."""
import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[3] / 'tools' / 'dataset_converters' / 'generate_synthetic.py'


@pytest.fixture(scope='module')
def cli():
    spec = importlib.util.spec_from_file_location('generate_synthetic_cli', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_parse_task_weights(cli):
    assert cli.parse_task_weights('rec=3, res=2.5,') == {'rec': 3.0, 'res': 2.5}
    with pytest.raises(Exception, match='TASK=WEIGHT'):
        cli.parse_task_weights('rec')
    with pytest.raises(Exception, match='not a number'):
        cli.parse_task_weights('rec=many')


def test_main_writes_the_set_and_skips_a_rerun(cli, tmp_path, capsys):
    argv = ['--out', str(tmp_path), '--num-train', '4', '--num-val', '2', '--seed', '5',
            '--image-size', '64', '--tasks', 'rec,res,caption', '--task-weights', 'rec=2',
            '--grounding-rounds', '2']
    cli.main(argv)
    first = capsys.readouterr().out
    assert 'generated' in first and 'train: 4 records' in first and 'val: 2 records' in first
    manifest = json.loads((tmp_path / 'manifest.json').read_text())
    assert manifest['arguments']['task_weights'] == {'rec': 2.0, 'res': 4.0, 'caption': 1.0}
    assert manifest['arguments']['grounding_rounds'] == 2
    tasks = {json.loads(line)['task'] for line in (tmp_path / 'train.jsonl').open()}
    assert tasks == {'rec', 'res', 'caption'}
    cli.main(argv)
    assert 'skipped' in capsys.readouterr().out
