"""DualCLIPTower: ViT global tokens + ConvNeXt pyramid with the ViT map on one level."""
import pytest
import torch

from mmrefvlm.models.backbones import DualCLIPTower
from mmrefvlm.models.backbones.dual_clip import nearest_stride_level
from mmrefvlm.registry import MODELS

TINY_VIT = dict(type='OpenCLIPViTTower', model_name=None,
                vision_cfg=dict(layers=2, width=64, patch_size=16, image_size=64, head_width=32))
TINY_CONVNEXT = dict(type='OpenCLIPConvNeXtTower', model_name=None, image_size=64,
                     vision_cfg=dict(timm_model_name='convnext_atto', timm_pool='',
                                     timm_proj='linear'))


def build_tiny(**kwargs):
    return MODELS.build(dict(type='DualCLIPTower', global_tower=TINY_VIT,
                             dense_tower=TINY_CONVNEXT, **kwargs))


@pytest.mark.parametrize('effective_stride,level', [(64 / 3, 2), (14, 2), (5, 0), (48, 3),
                                                    (11.3, 1)])
def test_nearest_stride_level(effective_stride, level):
    assert nearest_stride_level((4, 8, 16, 32), effective_stride) == level


@pytest.fixture(scope='module')
def tower():
    return build_tiny()


def test_declared_channels_match_the_pyramid(tower):
    # a 4 x 4 ViT grid on a 64 canvas has stride 16: the third level receives it
    assert tower.fuse_level == 2
    assert tower.pyramid_channels == (40, 80, 160 + 64, 320)
    assert tower.pyramid_strides == (4, 8, 16, 32)
    assert tower.global_channels == 64 and tower.global_grid == (4, 4)
    images = torch.randn(2, 3, 64, 64)
    tokens, pyramid = tower(images)
    assert tokens.shape == (2, 16, 64)
    assert [tuple(p.shape) for p in pyramid] == [
        (2, c, 64 // s, 64 // s) for c, s in zip(tower.pyramid_channels, tower.pyramid_strides)]

    # the fused level is [ConvNeXt level, ViT tokens as a row-major map]
    _, dense = tower.dense_tower(images)
    vit_tokens, _ = tower.global_tower(images)
    torch.testing.assert_close(tokens, vit_tokens)
    torch.testing.assert_close(pyramid[2][:, :160], dense[2])
    vit_map = pyramid[2][:, 160:]
    for row in range(4):
        for col in range(4):
            torch.testing.assert_close(vit_map[:, :, row, col], tokens[:, row * 4 + col])
    for level in (0, 1, 3):
        torch.testing.assert_close(pyramid[level], dense[level])


def test_fuse_level_override_resizes_the_vit_map():
    tower = build_tiny(fuse_level=0)
    assert tower.pyramid_channels == (40 + 64, 80, 160, 320)
    _, pyramid = tower(torch.randn(1, 3, 64, 64))
    assert pyramid[0].shape == (1, 104, 16, 16)


def test_bad_fuse_level_is_refused():
    with pytest.raises(ValueError, match='fuse_level'):
        build_tiny(fuse_level=4)


def test_frozen_towers_stay_frozen_in_train_mode(tower):
    tower.train()
    assert not any(p.requires_grad for p in tower.parameters())
    assert not tower.global_tower.training and not tower.dense_tower.training
    assert not any(m.training for m in tower.dense_tower.modules())


def test_paper_configuration_on_meta_device():
    with torch.device('meta'):
        tower = DualCLIPTower(
            global_tower=dict(type='OpenCLIPViTTower', model_name='ViT-L-14-336-quickgelu'),
            dense_tower=dict(type='OpenCLIPConvNeXtTower', model_name='convnext_large_d_320',
                             image_size=512))
    assert tower.fuse_level == 2  # 512 / 24 = 21.3 is nearest to stride 16
    assert tower.pyramid_channels == (192, 384, 768 + 1024, 1536)
    assert tower.global_grid == (24, 24) and tower.global_channels == 1024
