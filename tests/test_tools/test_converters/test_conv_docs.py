"""The RefCOCO commands of docs/converters.md, run on the fixtures, write what the benchmark
configs read, with image paths that resolve."""
import json
import pickle
import re
import shlex
from pathlib import Path

from mmengine.config import Config
from PIL import Image

REPO = Path(__file__).resolve().parents[3]
DOCS = REPO / 'docs' / 'converters.md'


def documented_refcoco_commands():
    """The argument lists of the commands in the second code block of the RefCOCO section."""
    section = DOCS.read_text().split('## RefCOCO / RefCOCO+ / RefCOCOg')[1].split('\n## ')[0]
    block = re.findall(r'```\n(.*?)```', section, re.S)[1]
    commands = block.replace('\\\n', ' ').strip().splitlines()
    return [shlex.split(command) for command in commands]


def benchmark_ann_files():
    """``data_root + ann_file`` of every RefCOCO benchmark config."""
    paths = set()
    for config in (REPO / 'configs' / 'refvlm' / 'benchmarks').glob('*refcoco*.py'):
        dataset = Config.fromfile(str(config)).test_dataloader.dataset
        paths.add(dataset.data_root + dataset.ann_file)
    return paths


def _lay_out_sources(root, data_dir):
    """refs pickles, instances.json and blank train2014 images where the docs expect them."""
    refs = json.loads((data_dir / 'refcoco' / 'refs.json').read_text())
    instances = (data_dir / 'refcoco' / 'instances.json').read_text()
    for name, refs_file in (('refcoco', 'refs(unc).p'), ('refcocog', 'refs(umd).p')):
        folder = root / 'data' / name
        (folder / 'train2014').mkdir(parents=True)
        (folder / refs_file).write_bytes(pickle.dumps(refs, protocol=2))
        (folder / 'instances.json').write_text(instances)
        for image in json.loads(instances)['images']:
            Image.new('RGB', (image['width'], image['height'])).save(
                folder / 'train2014' / image['file_name'], format='JPEG')


def test_documented_refcoco_commands_feed_the_benchmark_configs(tmp_path, data_dir, tool_module,
                                                                monkeypatch):
    _lay_out_sources(tmp_path, data_dir)
    monkeypatch.chdir(tmp_path)
    commands = documented_refcoco_commands()
    written = set()
    for argv in commands:
        assert argv[0] == 'python'
        tool = tool_module(argv[1].split('/')[-1][:-len('.py')])
        if argv[1].endswith('validate_vtinstruct.py'):
            assert tool.main(argv[2:]) == 0  # images found, sizes right
        else:
            tool.main(argv[2:])
            written.add(argv[argv.index('--out') + 1])
    assert written == benchmark_ann_files()
    records = [json.loads(line)
               for line in (tmp_path / 'data/refcoco/refcoco-val.jsonl').read_text().splitlines()]
    assert records and all(r['image'].startswith('train2014/COCO_train2014_') for r in records)
    assert {r['task'] for r in records} == {'rec', 'res'}
