"""demo/image_demo.py: visual-prompt flags become record prompts; a run prints and writes."""
import json
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope

from mmrefvlm.registry import MODELS
from mmrefvlm.testing import load_script


def _demo():
    return load_script('demo/image_demo.py')


def test_prompt_flags(tmp_path):
    demo = _demo()
    prompts = lambda *flags: demo.visual_prompts(demo.parse_args(['a.png', 'q', 'c.py', *flags]))
    assert prompts('--box', '10', '20', '30', '60') == [dict(type='box', data=[10, 20, 20, 40])]
    assert prompts('--point', '3', '4') == [dict(type='point', data=[3, 4])]
    assert prompts('--scribble', '1', '2', '3', '4') == [
        dict(type='scribble', data=[[1, 2], [3, 4]])]
    mask = np.zeros((8, 8), np.uint8)
    mask[2:4, 2:4] = 255
    mmcv.imwrite(mask, str(tmp_path / 'm.png'))
    (prompt, ) = prompts('--mask', str(tmp_path / 'm.png'))
    assert prompt['type'] == 'mask' and prompt['data'].sum() == 4
    assert prompts() == []
    with pytest.raises(SystemExit, match='x1 < x2'):
        prompts('--box', '30', '20', '10', '60')
    with pytest.raises(SystemExit):
        demo.parse_args(['a.png', 'q', 'c.py', '--box', '1', '2', '3', '4', '--point', '1', '2'])


def test_a_run_prints_the_answer_and_writes_picture_and_json(tiny_cfg, tiny_data, tmp_path,
                                                             capsys):
    init_default_scope('mmrefvlm')
    torch.manual_seed(0)
    checkpoint = str(tmp_path / 'model.pth')
    torch.save(dict(state_dict=MODELS.build(tiny_cfg.model).state_dict()), checkpoint)
    config = str(tmp_path / 'tiny.py')
    tiny_cfg.dump(config)
    image = osp.join(tiny_data, 'images', 'val', '000000.png')
    out_dir = tmp_path / 'out'
    _demo().main([image, 'What is in the region?', config, '--weights', checkpoint,
                  '--box', '4', '4', '30', '30', '--out-dir', str(out_dir)])
    assert 'answer:' in capsys.readouterr().out
    assert (out_dir / 'vis' / '000000.png').is_file()
    prediction = json.loads((out_dir / 'preds' / '000000.json').read_text())
    assert prediction['task'] == 'ig_box'
