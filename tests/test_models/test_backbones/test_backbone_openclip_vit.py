"""OpenCLIPViTTower: penultimate-layer patch tokens, local-only weight loading, freezing."""
import socket

import open_clip
import pytest
import torch
from open_clip.model import _build_vision_tower

from mmrefvlm.models.backbones import OpenCLIPViTTower
from mmrefvlm.registry import MODELS

TINY_VIT = dict(layers=3, width=64, patch_size=16, image_size=64, head_width=32)
TINY_TEXT = dict(context_length=8, vocab_size=64, width=32, heads=2, layers=1)


def block_output(visual, images, num_blocks):
    """Reference: run the first ``num_blocks`` residual blocks by hand, drop the class token."""
    x = visual._embeds(images)
    for blk in visual.transformer.resblocks[:num_blocks]:
        x = blk(x)
    return x[:, 1:]


def build_tiny(**kwargs):
    return MODELS.build(dict(type='OpenCLIPViTTower', model_name=None, vision_cfg=TINY_VIT,
                             **kwargs))


def test_shapes_and_attributes():
    tower = build_tiny()
    assert tower.global_channels == 64
    assert tower.global_grid == (4, 4)
    assert tower.pyramid_channels == (64,)
    assert tower.pyramid_strides == (16,)
    tokens, pyramid = tower(torch.randn(2, 3, 64, 64))
    assert tokens.shape == (2, 16, 64)
    assert len(pyramid) == 1 and pyramid[0].shape == (2, 64, 4, 4)
    # the one-level pyramid is the token grid, row-major
    assert torch.equal(pyramid[0].flatten(2).transpose(1, 2), tokens)


def test_larger_canvas_is_resized_to_the_vit_input():
    tower = build_tiny()
    tokens, pyramid = tower(torch.randn(2, 3, 96, 96))
    assert tokens.shape == (2, 16, 64)  # the ViT grid does not depend on the canvas
    assert pyramid[0].shape == (2, 64, 6, 6)  # the map lives on the canvas grid S / p


@pytest.mark.parametrize('select_layer,num_blocks', [(-2, 2), (-1, 3), (0, 1)])
def test_loads_full_clip_checkpoint_and_selects_layer(tmp_path, select_layer, num_blocks):
    torch.manual_seed(0)
    clip = open_clip.CLIP(embed_dim=16, vision_cfg=TINY_VIT, text_cfg=TINY_TEXT).eval()
    path = tmp_path / 'clip.bin'
    torch.save(clip.state_dict(), path)
    tower = build_tiny(pretrained=str(path), select_layer=select_layer)
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = block_output(clip.visual, images, num_blocks)
    tokens, _ = tower(images)
    torch.testing.assert_close(tokens, expected)


def test_loads_vision_only_state_dict_and_init_weights_keeps_it(tmp_path):
    torch.manual_seed(1)
    visual = _build_vision_tower(embed_dim=8, vision_cfg=TINY_VIT).eval()
    path = tmp_path / 'visual.pt'
    torch.save(visual.state_dict(), path)
    tower = build_tiny(pretrained=str(path))
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = block_output(visual, images, 2)
    tower.init_weights()  # what the runner does: must not re-initialise loaded weights
    torch.testing.assert_close(tower(images)[0], expected)


def test_checkpoint_at_another_size_has_its_position_embedding_resampled(tmp_path):
    visual = _build_vision_tower(embed_dim=8, vision_cfg=TINY_VIT)
    path = tmp_path / 'visual.pt'
    torch.save(visual.state_dict(), path)
    tower = build_tiny(pretrained=str(path), image_size=96)
    assert tower.global_grid == (6, 6)
    assert tower(torch.randn(1, 3, 96, 96))[0].shape == (1, 36, 64)


def test_mismatched_checkpoint_names_the_file(tmp_path):
    other = _build_vision_tower(embed_dim=8, vision_cfg=dict(TINY_VIT, width=32))
    path = tmp_path / 'other.pt'
    torch.save(other.state_dict(), path)
    with pytest.raises(RuntimeError, match='other.pt'):
        build_tiny(pretrained=str(path))


def test_hub_name_is_refused_without_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError('the tower tried to reach the network')

    monkeypatch.setattr(socket.socket, 'connect', no_network)
    monkeypatch.setattr(socket, 'create_connection', no_network)
    with pytest.raises(FileNotFoundError, match='pretrained'):
        build_tiny(pretrained='openai')
    with pytest.raises(FileNotFoundError, match='pretrained'):
        OpenCLIPViTTower(model_name='ViT-L-14-336', pretrained='openai')


def test_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match='not-a-clip'):
        OpenCLIPViTTower(model_name='not-a-clip')


def test_frozen_tower_has_no_trainable_parameters_and_stays_in_eval():
    tower = build_tiny(frozen=True)
    assert not any(p.requires_grad for p in tower.parameters())
    tower.train()
    assert not any(m.training for m in tower.modules())
    tokens, pyramid = tower(torch.randn(1, 3, 64, 64, requires_grad=True))
    assert not tokens.requires_grad and not pyramid[0].requires_grad


def test_trainable_tower_gives_every_parameter_a_gradient():
    tower = build_tiny(frozen=False)
    tower.train()
    assert tower.training
    tokens, pyramid = tower(torch.randn(1, 3, 64, 64))
    (tokens.sum() + pyramid[0].sum()).backward()
    # blocks after select_layer, ln_post and the projection are pruned, so none is unused
    assert all(p.grad is not None for p in tower.parameters())


def test_paper_architecture_attributes_on_meta_device():
    with torch.device('meta'):
        tower = OpenCLIPViTTower(model_name='ViT-L-14-336-quickgelu')
    assert tower.global_grid == (24, 24)
    assert tower.global_channels == 1024
    assert len(tower.visual.transformer.resblocks) == 23  # penultimate of 24 layers
