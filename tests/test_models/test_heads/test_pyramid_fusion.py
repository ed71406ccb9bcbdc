"""Shared head helpers: canvas padding masks, pyramid fusion, the padded-query attention mask."""
import torch

from mmrefvlm.models.heads import PyramidFusion, query_self_attn_mask
from mmrefvlm.models.heads.canvas import canvas_box_factors, canvas_padding_masks

METAS = [dict(img_shape=(64, 64), pad_shape=(64, 64)),
         dict(img_shape=(48, 56), pad_shape=(64, 64))]


def test_canvas_padding_masks_cover_cells_outside_the_image():
    # 48×56 image on a 64 canvas: at stride 16 rows 0-2 and columns 0-3 hold image pixels; at
    # stride 32 row 1 still holds rows 32-47 and column 1 columns 32-55
    stride16, stride32 = canvas_padding_masks(METAS, [(4, 4), (2, 2)], torch.device('cpu'))
    assert not stride16[0].any() and not stride32[0].any()
    expected = torch.ones(4, 4, dtype=torch.bool)
    expected[:3, :4] = False
    assert torch.equal(stride16[1], expected)
    assert not stride32[1].any()
    assert canvas_box_factors(METAS, torch.device('cpu')).tolist() == [[64.0] * 4] * 2


def test_pyramid_fusion_flattens_every_level_with_positions():
    torch.manual_seed(0)
    fusion = PyramidFusion((8, 16), embed_dims=32, num_groups=8)
    pyramid = [torch.randn(2, 8, 16, 16), torch.randn(2, 16, 8, 8)]
    memory, pos, mask = fusion(pyramid, METAS)
    assert memory.shape == pos.shape == (2, 16 * 16 + 8 * 8, 32)
    assert mask.shape == (2, 320) and not mask[0].any()
    assert int(mask[1, :256].sum()) == 16 * 16 - 12 * 14
    assert int(mask[1, 256:].sum()) == 8 * 8 - 6 * 7
    assert torch.isfinite(pos).all()
    # the level embedding tells the levels apart at the same grid position
    assert not torch.allclose(pos[0, 0], pos[0, 256])


def test_query_self_attn_mask_rule():
    query_mask = torch.tensor([[True, True, False]])
    blocked = query_self_attn_mask(query_mask, num_heads=2)
    assert blocked.shape == (2, 3, 3)
    expected = torch.tensor([[False, False, True],
                             [False, False, True],
                             [True, True, False]])
    assert torch.equal(blocked[0], expected) and torch.equal(blocked[1], expected)
