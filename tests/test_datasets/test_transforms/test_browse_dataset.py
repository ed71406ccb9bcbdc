"""tools/analysis_tools/browse_dataset.py on a tiny hand-written VT-Instruct set."""
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

from mmrefvlm.datasets.transforms import refvlm_pipeline, render_conversation
from mmrefvlm.tokenization import train_tokenizer

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
S = 64


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        'browse_dataset_tool', osp.join(REPO, 'tools', 'analysis_tools', 'browse_dataset.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _records():
    box_record = dict(
        id='kp_0', task='keypoint', image='a.png', width=80, height=60,
        instances=[dict(bbox=[10, 10, 30, 40], category='person',
                        segmentation=[[10, 10, 40, 10, 40, 50, 10, 50]],
                        keypoints=[15, 15, 2, 35, 15, 2, 25, 45, 1])],
        conversations=[
            {'from': 'human', 'value': '<image>\nFind the keypoints of the person.'},
            {'from': 'gpt', 'value': '<Phrase>person</Phrase>(<Unit>keypoint</Unit>[0]<REF>)',
             'refs': [0]}])
    prompt_record = dict(
        id='ig_0', task='ig_box', image='a.png', width=80, height=60,
        instances=[dict(bbox=[50, 5, 20, 20], category='square')],
        prompts=[dict(type='scribble', data=[[52, 8], [66, 20]])],
        conversations=[
            {'from': 'human', 'value': '<image>\nWhat is under <region>?'},
            {'from': 'gpt', 'value': '<Phrase>a square</Phrase>(<Unit>box</Unit>[0]<REF>)',
             'refs': [0]}])
    return [box_record, prompt_record]


def _write_dataset(root):
    Image.fromarray(np.full((60, 80, 3), 128, np.uint8)).save(root / 'a.png')
    records = _records()
    (root / 'train.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in records))
    (root / 'meta.json').write_text(json.dumps(dict(
        classes=['person', 'square'], keypoint_names=['l', 'r', 'c'],
        keypoint_sigmas=[0.1, 0.1, 0.1], skeleton=[[0, 1], [1, 2]])))
    texts = [render_conversation(r['task'], r['conversations']).text for r in records]
    train_tokenizer(texts * 2, str(root / 'tokenizer'), vocab_size=300)
    tokenizer = dict(type='generated', path=str(root / 'tokenizer'))
    dataset = dict(type='VTInstructDataset', ann_file=str(root / 'train.jsonl'),
                   data_prefix=dict(img_path=str(root)), on_bad_record='raise')
    return dict(
        default_scope='mmrefvlm',
        train_dataloader=dict(dataset=dict(
            **dataset, pipeline=refvlm_pipeline(S, tokenizer, image_token_len=5))),
        val_dataloader=dict(dataset=dict(
            **dataset, test_mode=True,
            pipeline=refvlm_pipeline(S, tokenizer, image_token_len=5, test_mode=True))))


def test_browse_writes_one_image_per_sample(tmp_path):
    tool = _load_tool()
    cfg = Config(_write_dataset(tmp_path))
    paths = tool.browse(cfg, str(tmp_path / 'out'), num=5, split='train')
    assert len(paths) == 2
    for path in paths:
        image = np.asarray(Image.open(path))
        assert image.shape[1] >= S and image.shape[0] > S  # canvas + text panel
        canvas = image[:S, :S]
        assert (np.abs(canvas.astype(int) - 128).sum(-1) > 30).any()  # something was drawn


def test_browse_cli_val_split(tmp_path):
    tool = _load_tool()
    config_file = tmp_path / 'browse_cfg.py'
    Config(_write_dataset(tmp_path)).dump(str(config_file))
    assert tool.main([str(config_file), '--output-dir', str(tmp_path / 'val'), '--num', '1',
                      '--split', 'val']) == 0
    assert len(list((tmp_path / 'val').glob('*.png'))) == 1


def test_val_split_falls_back_to_the_test_loader(tmp_path, capsys):
    tool = _load_tool()
    settings = _write_dataset(tmp_path)
    settings['test_dataloader'], settings['val_dataloader'] = settings['val_dataloader'], None
    config_file = tmp_path / 'main_like_cfg.py'
    Config(settings).dump(str(config_file))
    assert tool.main([str(config_file), '--output-dir', str(tmp_path / 'val'), '--num', '1',
                      '--split', 'val']) == 0
    assert len(list((tmp_path / 'val').glob('*.png'))) == 1
    assert 'no val_dataloader (None): showing test_dataloader' in capsys.readouterr().err
    del settings['test_dataloader']
    Config(settings).dump(str(config_file))
    with pytest.raises(SystemExit, match=r'no val_dataloader \(missing or None\)'):
        tool.main([str(config_file), '--output-dir', str(tmp_path / 'x'), '--split', 'val'])


def test_collapse_placeholders():
    tool = _load_tool()
    assert tool.collapse_placeholders('a<image><image><image>\nb <region><region>') == \
        'a<image>x3\nb <region>x2'
