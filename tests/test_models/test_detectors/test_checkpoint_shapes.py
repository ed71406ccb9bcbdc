"""A checkpoint of another config stops the load, naming the tensors whose shapes differ,
unless the model allows it; missing keys (a stage's new heads) stay allowed."""
import copy

import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

from mmrefvlm.registry import MODELS


def _model(model_cfg):
    init_default_scope('mmrefvlm')
    torch.manual_seed(0)
    return MODELS.build(model_cfg)


def _other_configs_checkpoint(model, path):
    """The model's weights with two box-head tensors of another width (as a run with other
    ``box`` dimensions writes them), without the mask head (a stage that had none)."""
    state = {k: v for k, v in model.state_dict().items() if not k.startswith('heads.mask.')}
    changed = sorted(k for k in state if k.startswith('heads.box.') and state[k].dim() == 2)[:2]
    for key in changed:
        state[key] = torch.zeros(state[key].shape[0] * 2, state[key].shape[1])
    torch.save(dict(state_dict=state), path)
    return changed


def test_mismatched_shapes_stop_the_load_listing_the_keys(tiny_cfg, tmp_path):
    model = _model(tiny_cfg.model)
    path = str(tmp_path / 'other.pth')
    changed = _other_configs_checkpoint(model, path)
    # what Runner.load_checkpoint (load_from, tools/test.py) and init_cfg Pretrained call
    with pytest.raises(ValueError, match='2 tensors differ in shape') as error:
        load_checkpoint(model, path, map_location='cpu')
    for key in changed:
        assert key in str(error.value)
    assert 'model.allow_mismatched_shapes=True' in str(error.value)


def test_partial_loading_when_allowed(tiny_cfg, tmp_path):
    source = _model(tiny_cfg.model)
    path = str(tmp_path / 'other.pth')
    changed = _other_configs_checkpoint(source, path)
    allowed = copy.deepcopy(tiny_cfg.model)
    allowed.allow_mismatched_shapes = True
    torch.manual_seed(1)
    model = MODELS.build(allowed)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    load_checkpoint(model, path, map_location='cpu')
    after = model.state_dict()
    for key in changed:  # kept at their initialisation
        torch.testing.assert_close(after[key], before[key])
    lm_key = next(k for k in after if k.startswith('neck.lm.'))
    torch.testing.assert_close(after[lm_key], source.state_dict()[lm_key])  # the rest loaded


def test_missing_keys_alone_still_load(tiny_cfg, tmp_path):
    source = _model(tiny_cfg.model)
    state = {k: v for k, v in source.state_dict().items() if not k.startswith('heads.mask.')}
    path = str(tmp_path / 'previous_stage.pth')
    torch.save(dict(state_dict=state), path)
    model = _model(tiny_cfg.model)
    load_checkpoint(model, path, map_location='cpu')
    key = next(k for k in state if k.startswith('heads.box.'))
    torch.testing.assert_close(model.state_dict()[key], state[key])
