"""docs/finetune.md, run: its bash blocks on the converter fixtures, with the tiny config.

The test lays out what the guide expects in a scratch directory — ``$COCO`` and ``$REFCOCO``
made of ``tests/data/converters`` (with generated images), a checkpoint of the tiny model where
the guide looks for it, and links to the repository's ``tools/``, ``demo/`` and ``configs/`` —
and runs the guide's commands there unchanged. To take seconds, not minutes: the tiny config
the guide inherits is the suite's test-size one (``tiny_cfg``: 64-px canvas, 2-layer LM, 1-layer
heads), the guide's config gets test-size settings (two training iterations, short answers),
and its ``python`` is a stand-in served by one warm interpreter (``warm_python``), so the nine
commands do not import torch and MMDetection nine times.
"""
import json
import os
import os.path as osp
import pickle
import re
import subprocess

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image

from mmrefvlm.registry import MODELS
from warm_python import WarmPython

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
GUIDE = osp.join(REPO, 'docs', 'finetune.md')
FIXTURES = osp.join(REPO, 'tests', 'data', 'converters')
TINY = 'refvlm_tinyllama_tinyconv_stage2_synthetic.py'
# appended to the guide's config: two training iterations and short answers (a random model
# never stops on its own), so that the whole guide runs in a few minutes
# (updates, not assignments: the guide's own keys in the same file must stay)
# appended to the guide's config: two training iterations and short answers (a random model
# never stops on its own); updates, not assignments: the guide's own keys must stay
TEST_SIZE = """train_cfg = dict(max_iters=2)
train_dataloader.update(batch_size=2)
model = dict(neck=dict(max_new_tokens=8))
"""


def guide_script(paths: dict) -> str:
    """The guide's bash blocks, in order, with its variables set to ``paths`` where given and
    :data:`TEST_SIZE` added to the config it writes."""
    with open(GUIDE, encoding='utf-8') as file:
        blocks = re.findall(r'```bash\n(.*?)```', file.read(), re.S)
    script = '\n'.join(blocks)
    for name, value in paths.items():
        script, found = re.subn(rf'^{name}=\S+', f'{name}={value}', script, flags=re.M)
        assert found == 1, f'the guide does not set ${name}'
    script, found = re.subn(r'\nCONFIG\n', '\n' + TEST_SIZE + 'CONFIG\n', script)
    assert found == 1, "the guide writes no config (a heredoc ending in 'CONFIG')"
    return script


def _images(folder: str, coco_file: str) -> None:
    """A random JPEG of the right size for every image of a COCO file."""
    os.makedirs(folder, exist_ok=True)
    with open(coco_file, encoding='utf-8') as file:
        images = json.load(file)['images']
    rng = np.random.default_rng(0)
    for image in images:
        pixels = rng.integers(0, 255, (image['height'], image['width'], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(osp.join(folder, image['file_name']))


def _layout(root: str, tiny_cfg: Config) -> dict:
    """The files and links the guide expects; returns the environment of its variables."""
    coco, refcoco = osp.join(root, 'coco'), osp.join(root, 'refcoco')
    os.makedirs(osp.join(coco, 'annotations'))
    os.makedirs(refcoco)
    coco_file = osp.join(FIXTURES, 'coco', 'instances_val.json')
    os.symlink(coco_file, osp.join(coco, 'annotations', 'instances_train2017.json'))
    _images(osp.join(coco, 'train2017'), coco_file)
    refcoco_file = osp.join(FIXTURES, 'refcoco', 'instances.json')
    os.symlink(refcoco_file, osp.join(refcoco, 'instances.json'))
    with open(osp.join(FIXTURES, 'refcoco', 'refs.json'), encoding='utf-8') as file:
        refs = json.load(file)
    with open(osp.join(refcoco, 'refs(unc).p'), 'wb') as file:
        pickle.dump(refs, file, protocol=2)
    _images(osp.join(coco, 'train2014'), refcoco_file)
    work = osp.join(root, 'work')
    os.makedirs(work)
    for name in ('tools', 'demo'):
        os.symlink(osp.join(REPO, name), osp.join(work, name))
    configs = osp.join(work, 'configs')
    os.makedirs(osp.join(configs, 'refvlm'))
    for name in ('_base_', 'refvlm_stage2.py'):
        os.symlink(osp.join(REPO, 'configs', name), osp.join(configs, name))
    # the base the guide inherits: the tiny config at test size
    tiny_cfg.dump(osp.join(configs, 'refvlm', TINY))
    return dict(COCO=coco, REFCOCO=refcoco, work=work)


def _main_job_checkpoint(work: str, tiny_cfg: Config) -> None:
    """A randomly initialised tiny model saved where the guide's config loads it from."""
    init_default_scope('mmrefvlm')
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg.model)
    os.makedirs(osp.join(work, 'work_dirs', 'refvlm_tiny'))
    torch.save(dict(state_dict=model.state_dict(), meta={}),
               osp.join(work, 'work_dirs', 'refvlm_tiny', 'iter_880.pth'))


@pytest.mark.slow
def test_the_finetune_guide_runs_end_to_end(tiny_cfg, tmp_path):
    env = _layout(str(tmp_path), tiny_cfg)
    work = env.pop('work')
    _main_job_checkpoint(work, tiny_cfg)
    with WarmPython(tmp_path, preload=['mmrefvlm.apis', 'mmengine.runner']) as bin_dir:
        done = subprocess.run(['bash', '-euo', 'pipefail', '-c', guide_script(env)], cwd=work,
                              env=dict(os.environ, PYTHONPATH=REPO,
                                       PATH=f'{bin_dir}:{os.environ["PATH"]}'),
                              capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert '0 faults in' in output and re.search(r'rec/acc@0\.5: [0-9.]+', output)
    assert 'answer:' in output
    assert os.listdir(osp.join(work, 'outputs', 'my_refcoco', 'vis'))
    assert os.listdir(osp.join(work, 'outputs', 'my_refcoco', 'preds'))
    # the pictures of tools/test.py are of the converted RefCOCO records, not the base's data
    pictures = os.listdir(osp.join(work, 'work_dirs', 'my_refcoco', 'vis'))
    assert pictures and all(re.match(r'\d+_re[cs]_COCO_train2014_', p) for p in pictures)
    # two training iterations from the main job's weights, then the export of that checkpoint
    assert open(osp.join(work, 'work_dirs', 'my_refcoco', 'last_checkpoint')).read().strip() \
        .endswith('iter_2.pth')
    assert osp.isfile(osp.join(work, 'work_dirs', 'my_refcoco', 'hf', 'llm', 'config.json'))
