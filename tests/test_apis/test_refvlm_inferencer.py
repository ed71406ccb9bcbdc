"""REFVLMInferencer on the tiny model: DetInferencer's call shape, batching, files, prompts."""
import json
import os
import os.path as osp

import mmcv
import numpy as np
import pytest

from mmrefvlm.apis import REFVLMInferencer


@pytest.fixture
def inferencer(tiny_cfg):
    with pytest.warns(UserWarning, match='randomly initialised'):
        return REFVLMInferencer(tiny_cfg, device='cpu', show_progress=False)


def test_batched_answers_equal_one_by_one_and_are_json(inferencer, held_out):
    items = held_out()
    images, texts = [i for i, _ in items], [t for _, t in items]
    single = inferencer(images, texts=texts, batch_size=1)
    batched = inferencer(images, texts=texts, batch_size=4)
    assert set(single) == {'predictions', 'visualization'} and single['visualization'] == []
    assert len(batched['predictions']) == 4
    for one, many in zip(single['predictions'], batched['predictions']):
        json.dumps(one)
        assert one['text'] == many['text'] and one['task'] == 'rec'
        assert len(one['refs']) == len(many['refs'])
        for a, b in zip(one['refs'], many['refs']):
            np.testing.assert_allclose(a['bbox'], b['bbox'], atol=0.05)


def test_out_dir_gets_pictures_and_json(inferencer, held_out, tmp_path):
    (image, text), = held_out(count=1)
    result = inferencer(image, texts=text, out_dir=str(tmp_path), no_save_pred=False,
                        return_vis=True)
    name = osp.splitext(osp.basename(image))[0]
    assert os.listdir(tmp_path / 'vis') == [f'{name}.png']
    with open(tmp_path / 'preds' / f'{name}.json') as file:
        assert json.load(file) == result['predictions'][0]
    picture, = result['visualization']
    assert picture.shape[1] == 512 and picture.shape[0] > 512  # 64 px scaled up, text below


def test_array_inputs_visual_prompts_and_earlier_turns(inferencer, held_out):
    (image, _), = held_out(count=1)
    bgr = mmcv.imread(image)
    mask = np.zeros(bgr.shape[:2], bool)
    mask[10:30, 10:30] = True
    result = inferencer([
        dict(img=bgr, text='What is in the region?', visual_prompts=[
            dict(type='box', data=[5, 5, 20, 20])]),
        dict(img=bgr, text='Segment it.', task='mask', visual_prompts=[
            dict(type='mask', data=mask)],
            history=[('Where is the red circle?',
                      '<Phrase>the red circle</Phrase>(<Unit>box</Unit>[0]<REF>)')]),
    ], batch_size=2)
    first, second = result['predictions']
    assert first['task'] == 'ig_box' and second['task'] == 'ig_mask'


def test_user_errors_are_named(inferencer, held_out):
    (image, _), = held_out(count=1)
    with pytest.raises(ValueError, match='no question'):
        inferencer(image)
    with pytest.raises(ValueError, match='2 texts for 1 images'):
        inferencer(image, texts=['a', 'b'])
    with pytest.raises(ValueError, match=r"unknown input fields \['prompt'\]"):
        inferencer(dict(img=image, prompt='hi'))
    with pytest.raises(FileNotFoundError, match='neither a config file nor an exported'):
        REFVLMInferencer('no/such/config.py')
