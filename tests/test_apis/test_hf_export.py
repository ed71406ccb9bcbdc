"""Export to HF formats and back: the same model, the same predictions, bit for bit."""
import importlib.util
import json
import os.path as osp

import pytest
import torch
from mmengine.registry import init_default_scope
from transformers import AutoModelForCausalLM, AutoTokenizer

from mmrefvlm.apis import REFVLMInferencer
from mmrefvlm.registry import MODELS
from mmrefvlm.testing import script_generation

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ANSWER = ('<Phrase>the red circle</Phrase>(<Unit>box</Unit>[0]<REF>) and '
          '<Phrase>the blue square</Phrase>(<Unit>mask</Unit>[0]<REF>[1]<REF>)')


def _export_tool():
    path = osp.join(REPO, 'tools', 'model_converters', 'export_hf.py')
    spec = importlib.util.spec_from_file_location('export_hf', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_export_then_load_gives_identical_predictions(tiny_cfg, held_out, tmp_path):
    init_default_scope('mmrefvlm')
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg.model)
    checkpoint = str(tmp_path / 'model.pth')
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(skeleton=[[0, 1]]))), checkpoint)
    config = str(tmp_path / 'tiny.py')
    tiny_cfg.dump(config)
    out_dir = str(tmp_path / 'hf')
    _export_tool().main(
        [config, checkpoint, out_dir])
    lm = AutoModelForCausalLM.from_pretrained(osp.join(out_dir, 'llm'))
    assert lm.config.num_hidden_layers == 2
    assert '<REF>' in AutoTokenizer.from_pretrained(osp.join(out_dir, 'tokenizer')).get_vocab()
    # Mask-Guided Aggregation is parameter-free: no prompt_encoder file for it
    for part in ('vision_tower', 'projector', 'router', 'head_box', 'head_mask',
                 'head_keypoint', 'head_depth'):
        assert osp.isfile(osp.join(out_dir, f'{part}.safetensors')), part

    original = REFVLMInferencer(config, weights=checkpoint, device='cpu', show_progress=False)
    exported = REFVLMInferencer(out_dir, device='cpu', show_progress=False)
    assert exported.model.dataset_meta == dict(skeleton=[[0, 1]])
    for key, value in original.model.state_dict().items():
        assert torch.equal(value, exported.model.state_dict()[key]), key
    items = held_out(('rec', 'res'), count=3)
    inputs = [dict(img=image, text=text) for image, text in items]
    assert original(inputs, batch_size=3) == exported(inputs, batch_size=3)
    for inferencer in (original, exported):
        script_generation(inferencer.model, ANSWER)
    scripted = original(inputs, batch_size=3)
    assert [len(p['refs']) for p in scripted['predictions']] == [3, 3, 3]
    assert 'mask' in scripted['predictions'][0]['refs'][1]
    assert json.dumps(scripted) == json.dumps(exported(inputs, batch_size=3))


def test_an_exported_directory_holds_its_weights(tmp_path):
    (tmp_path / 'llm').mkdir()
    (tmp_path / 'config.py').write_text('model = dict()\n')
    with pytest.raises(ValueError, match='holds its weights'):
        REFVLMInferencer(str(tmp_path), weights='model.pth')
