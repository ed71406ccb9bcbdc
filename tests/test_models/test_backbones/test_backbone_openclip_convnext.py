"""OpenCLIPConvNeXtTower: the four ConvNeXt stage maps, local-only weight loading, freezing."""
import socket

import open_clip
import pytest
import torch

from mmrefvlm.models.backbones import OpenCLIPConvNeXtTower
from mmrefvlm.registry import MODELS

TINY_CONVNEXT = dict(timm_model_name='convnext_atto', timm_pool='', timm_proj='linear',
                     image_size=64)
TINY_TEXT = dict(context_length=8, vocab_size=64, width=32, heads=2, layers=1)
ATTO_CHANNELS = (40, 80, 160, 320)


def build_tiny(**kwargs):
    cfg = dict(type='OpenCLIPConvNeXtTower', model_name=None, vision_cfg=TINY_CONVNEXT,
               image_size=64)
    cfg.update(kwargs)
    return MODELS.build(cfg)


@pytest.fixture(scope='module')
def tower():
    return build_tiny()


def stage_outputs(trunk, images):
    """Reference: stem then each timm stage in turn."""
    x = trunk.stem(images)
    outs = []
    for stage in trunk.stages:
        x = stage(x)
        outs.append(x)
    return outs


def test_shapes_and_attributes(tower):
    assert tower.pyramid_channels == ATTO_CHANNELS
    assert tower.pyramid_strides == (4, 8, 16, 32)
    assert tower.global_channels == 320 and tower.global_grid == (2, 2)
    tokens, pyramid = tower(torch.randn(2, 3, 64, 64))
    assert [tuple(p.shape) for p in pyramid] == [
        (2, c, 64 // s, 64 // s) for c, s in zip(ATTO_CHANNELS, (4, 8, 16, 32))]
    assert tokens.shape == (2, 4, 320)
    assert torch.equal(tokens, pyramid[3].flatten(2).transpose(1, 2))


def test_other_canvas_is_encoded_at_image_size_and_mapped_back(tower):
    tokens, pyramid = tower(torch.randn(1, 3, 128, 128))
    assert tokens.shape == (1, 4, 320)  # the trunk ran at image_size = 64
    assert [p.shape[-1] for p in pyramid] == [32, 16, 8, 4]


def test_loads_full_clip_checkpoint(tmp_path):
    torch.manual_seed(0)
    clip = open_clip.CLIP(embed_dim=16, vision_cfg=TINY_CONVNEXT, text_cfg=TINY_TEXT).eval()
    path = tmp_path / 'clip.safetensors'
    from safetensors.torch import save_file
    save_file(clip.state_dict(), str(path))
    tower = build_tiny(pretrained=str(path))
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = stage_outputs(clip.visual.trunk, images)
    _, pyramid = tower(images)
    for got, want in zip(pyramid, expected):
        torch.testing.assert_close(got, want)


def test_round_trips_its_own_state_dict(tmp_path, tower):
    path = tmp_path / 'trunk.pth'
    torch.save({'state_dict': tower.trunk.state_dict()}, path)
    loaded = build_tiny(pretrained=str(path))
    images = torch.randn(1, 3, 64, 64)
    for got, want in zip(loaded(images)[1], tower(images)[1]):
        assert torch.equal(got, want)


def test_hub_tag_is_refused_without_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError('the tower tried to reach the network')

    monkeypatch.setattr(socket.socket, 'connect', no_network)
    monkeypatch.setattr(socket, 'create_connection', no_network)
    with pytest.raises(FileNotFoundError, match='pretrained'):
        build_tiny(pretrained='laion2b_s29b_b131k_ft_soup')


def test_vit_config_is_refused():
    with pytest.raises(TypeError, match='timm'):
        OpenCLIPConvNeXtTower(model_name='ViT-B-16')


def test_frozen_tower_has_no_trainable_parameters_and_stays_in_eval(tower):
    assert tower.frozen
    assert not any(p.requires_grad for p in tower.parameters())
    tower.train()
    assert not any(m.training for m in tower.modules())
    images = torch.randn(1, 3, 64, 64)
    first, second = tower(images)[1], tower(images)[1]
    assert all(torch.equal(a, b) for a, b in zip(first, second))  # no stochastic depth
    assert not any(p.requires_grad for p in first)


def test_paper_architecture_attributes_on_meta_device():
    with torch.device('meta'):
        tower = OpenCLIPConvNeXtTower(model_name='convnext_large_d_320', image_size=512)
    assert tower.pyramid_channels == (192, 384, 768, 1536)
    assert tower.global_grid == (16, 16)
