"""TinyConvTower: our trainable CPU tower for the tiny configs."""
import pytest
import torch

from mmrefvlm.models.backbones import TinyConvTower
from mmrefvlm.registry import MODELS


def build(**kwargs):
    return MODELS.build(dict(type='TinyConvTower', **kwargs))


def test_shapes_and_attributes():
    tower = build()
    assert tower.pyramid_channels == (32, 64, 128, 256)
    assert tower.pyramid_strides == (4, 8, 16, 32)
    assert tower.global_channels == 128 and tower.global_grid == (8, 8)
    tokens, pyramid = tower(torch.randn(2, 3, 128, 128))
    assert tokens.shape == (2, 64, 128)
    assert [tuple(p.shape) for p in pyramid] == [
        (2, 32, 32, 32), (2, 64, 16, 16), (2, 128, 8, 8), (2, 256, 4, 4)]


def test_global_tokens_are_the_level_row_major_plus_distinct_positions():
    tower = build().eval()
    tokens, pyramid = tower(torch.randn(2, 3, 128, 128))
    pos = tower.pos_embed[0]  # [64, 128]
    assert torch.unique(pos, dim=0).shape[0] == 64  # every position is told apart
    level = pyramid[2]
    for row, col in [(0, 0), (0, 7), (3, 5), (7, 0), (7, 7)]:
        torch.testing.assert_close(tokens[:, row * 8 + col],
                                   level[:, :, row, col] + pos[row * 8 + col])


def test_pooled_global_grid():
    tower = build(global_pool=4, global_level=2).eval()
    assert tower.global_grid == (4, 4)
    tokens, pyramid = tower(torch.randn(1, 3, 128, 128))
    level = pyramid[2]  # [1, 128, 8, 8] -> mean of each 2 x 2 cell
    pooled = level.reshape(1, 128, 4, 2, 4, 2).mean(dim=(3, 5))
    expected = pooled.flatten(2).transpose(1, 2) + tower.pos_embed
    torch.testing.assert_close(tokens, expected)


def test_trainable_by_default_every_parameter_gets_a_gradient():
    tower = build(channels=(8, 16, 32, 64), depths=(1, 1, 1, 1), image_size=64)
    tower.train()
    assert tower.training
    tokens, pyramid = tower(torch.randn(2, 3, 64, 64))
    (tokens.square().mean() + sum(p.mean() for p in pyramid)).backward()
    assert all(p.requires_grad and p.grad is not None for p in tower.parameters())


def test_frozen_option():
    tower = build(channels=(8, 16, 32, 64), image_size=64, frozen=True)
    tower.train()
    assert not any(p.requires_grad for p in tower.parameters())
    assert not any(m.training for m in tower.modules())


def test_wrong_canvas_and_bad_arguments_are_refused():
    with pytest.raises(ValueError, match='image_size'):
        build()(torch.randn(1, 3, 96, 96))
    with pytest.raises(ValueError, match='global_pool'):
        build(global_pool=16)
    with pytest.raises(ValueError, match='channels'):
        build(channels=(8, 16, 32))
    with pytest.raises(ValueError, match='depths'):
        build(depths=(1, 1))


def test_depths_add_blocks_without_changing_the_interface():
    shallow, deep = build(depths=(0, 0, 0, 0)), build(depths=(1, 1, 2, 1))
    assert sum(p.numel() for p in deep.parameters()) > sum(
        p.numel() for p in shallow.parameters())
    for tower in (shallow, deep):
        tokens, pyramid = tower(torch.randn(1, 3, 128, 128))
        assert tokens.shape == (1, 64, 128)
        assert [p.shape[1] for p in pyramid] == [32, 64, 128, 256]
