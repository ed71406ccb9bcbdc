"""RefMaskHead: shapes, padded queries and pixels, group matching in the loss, training,
gradients."""
import pytest
import torch
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData

from head_checks import (CANVAS, LLM_DIMS, LOCATED, assert_every_parameter_has_a_gradient,
                         batch_inputs, losses_before_and_after_training, total)
from mmrefvlm.models.heads import RefMaskHead
from mmrefvlm.registry import MODELS

PYRAMID_CHANNELS = (8, 16, 16, 32)
STRIDES = (4, 8, 16, 32)
LOSSES = {'loss_mask', 'loss_dice', 'd0.loss_mask', 'd0.loss_dice', 'loss_locate',
          'loss_dense_bbox', 'loss_dense_iou'}


def build_head(**overrides):
    cfg = dict(type='RefMaskHead', in_channels=LLM_DIMS, pyramid_channels=PYRAMID_CHANNELS,
               num_groups=8, mask_prior=dict(type='LocatedBoxPrior'), **LOCATED,
               pixel_decoder=dict(type='PixelDecoder', norm_cfg=dict(type='GN', num_groups=8),
                                  act_cfg=dict(type='ReLU')))
    cfg.update(overrides)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def rect_mask(y0, y1, x0, x1):
    mask = torch.zeros(CANVAS, CANVAS, dtype=torch.uint8)
    mask[y0:y1, x0:x1] = 1
    return mask


def make_batch(seed=0):
    """Sample 0: groups (0, 0, 1) + a padded slot; sample 1: group (0, 0) + two padded slots and
    an image of 48×56 on the 64×64 canvas."""
    queries, query_mask, group_ids, pyramid, metas = batch_inputs(PYRAMID_CHANNELS, STRIDES, seed)
    masks0 = torch.stack([rect_mask(0, 24, 0, 32), rect_mask(32, 64, 32, 64),
                          rect_mask(8, 56, 40, 48)]).numpy()
    masks1 = torch.stack([rect_mask(0, 48, 0, 16), rect_mask(16, 40, 24, 56)]).numpy()
    targets = [
        InstanceData(masks=BitmapMasks(masks0, CANVAS, CANVAS), group_ids=torch.tensor([0, 0, 1])),
        InstanceData(masks=BitmapMasks(masks1, CANVAS, CANVAS), group_ids=torch.tensor([0, 0])),
    ]
    return queries, query_mask, group_ids, pyramid, targets, metas


def test_shapes_and_predict():
    head = build_head()
    assert isinstance(head, RefMaskHead)
    queries, query_mask, _, pyramid, _, metas = make_batch()
    logits = head(queries, query_mask, pyramid, metas)
    assert logits.shape == (2, 2, 4, CANVAS // 4, CANVAS // 4)
    results = head.predict_by_feat(queries, query_mask, pyramid, metas)
    assert [len(r) for r in results] == [3, 2]
    for r in results:
        assert r.masks.shape == (len(r), CANVAS, CANVAS)
        assert bool(((r.masks >= 0) & (r.masks <= 1)).all())
        assert r.bboxes.shape == (len(r), 4) and r.scores.shape == (len(r), )
    # nothing predicted on the canvas padding (outside img_shape 48×56)
    assert float(results[1].masks[:, 48:].abs().sum()) == 0
    assert float(results[1].masks[:, :, 56:].abs().sum()) == 0


def test_padded_queries_do_not_change_valid_outputs():
    head = build_head().eval()
    queries, query_mask, _, pyramid, _, metas = make_batch()
    before = head(queries, query_mask, pyramid, metas)
    changed = queries.clone()
    changed[~query_mask] = torch.randn(int((~query_mask).sum()), LLM_DIMS) * 10
    after = head(changed, query_mask, pyramid, metas)
    torch.testing.assert_close(after[:, query_mask], before[:, query_mask], atol=1e-5, rtol=0)
    assert torch.isfinite(after).all()


def test_swapped_targets_inside_a_group_give_the_same_loss():
    head = build_head()
    queries, query_mask, group_ids, pyramid, targets, metas = make_batch()
    losses = head.loss_by_feat(queries, query_mask, group_ids, pyramid, targets, metas)
    assert set(losses) == LOSSES
    swapped = [targets[0][[1, 0, 2]], targets[1][[1, 0]]]
    losses_swapped = head.loss_by_feat(queries, query_mask, group_ids, pyramid, swapped, metas)
    for name, value in losses.items():
        torch.testing.assert_close(losses_swapped[name], value)


def test_canvas_padding_pixels_are_not_supervised():
    head = build_head()
    queries, query_mask, group_ids, pyramid, targets, metas = make_batch()
    losses = head.loss_by_feat(queries, query_mask, group_ids, pyramid, targets, metas)
    # fill sample 1's canvas padding (rows ≥ 48, columns ≥ 56) with foreground
    masks1 = targets[1].masks.masks.copy()
    masks1[:, 48:, :] = 1
    masks1[:, :, 56:] = 1
    noisy = [targets[0], InstanceData(masks=BitmapMasks(masks1, CANVAS, CANVAS),
                                      group_ids=targets[1].group_ids)]
    losses_noisy = head.loss_by_feat(queries, query_mask, group_ids, pyramid, noisy, metas)
    for name, value in losses.items():
        torch.testing.assert_close(losses_noisy[name], value)


# Mask2Former's losses (the tiny config's choice): sigmoid BCE + dice, matched with their costs
BCE_LOSSES = dict(
    assigner=dict(type='GroupHungarianAssigner', match_costs=[
        dict(type='CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
        dict(type='DiceCost', weight=5.0, pred_act=True, eps=1.0)]),
    loss_mask=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=5.0),
    loss_dice=dict(type='DiceLoss', use_sigmoid=True, activate=True, naive_dice=True, eps=1.0,
                   loss_weight=5.0))


@pytest.mark.parametrize('losses', [{}, BCE_LOSSES], ids=['focal', 'bce'])
def test_loss_decreases_on_a_fixed_batch(losses):
    first, last = losses_before_and_after_training(build_head(**losses), make_batch())
    assert total(last, ('loss_mask', 'loss_dice')) < 0.5 * total(first, ('loss_mask', 'loss_dice'))


@pytest.mark.parametrize('with_targets', [True, False])
def test_every_parameter_gets_a_gradient(with_targets):
    head = build_head()
    queries, query_mask, group_ids, pyramid, targets, metas = make_batch()
    if not with_targets:
        query_mask = torch.zeros_like(query_mask)
        group_ids = torch.full_like(group_ids, -1)
        targets = [InstanceData(masks=BitmapMasks([], CANVAS, CANVAS),
                                group_ids=torch.zeros(0).long()) for _ in range(2)]
    losses = head.loss_by_feat(queries, query_mask, group_ids, pyramid, targets, metas)
    assert set(losses) == LOSSES
    if not with_targets:
        assert all(v.item() == 0 for v in losses.values())
    assert_every_parameter_has_a_gradient(head, losses)


def test_bf16_head_returns_fp32_losses_and_masks():
    head = build_head().to(torch.bfloat16)
    queries, query_mask, group_ids, pyramid, targets, metas = make_batch()
    pyramid = [feat.bfloat16() for feat in pyramid]
    losses = head.loss_by_feat(queries.bfloat16(), query_mask, group_ids, pyramid, targets, metas)
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())
    results = head.predict_by_feat(queries.bfloat16(), query_mask, pyramid, metas)
    assert [r.masks.dtype for r in results] == [torch.float32] * 2


def test_box_prior_bounds_the_mask_by_the_widened_located_box():
    """Zero inside the located box widened by its margin, -scale per half-side beyond."""
    head = build_head()
    head.mask_prior.margin = 2.0
    reference = torch.tensor([[[0.5, 0.5, 0.25, 0.25]]])  # widened: half-side 0.25
    prior = head.mask_prior(reference, (8, 8), torch.tensor(3.0))[0, 0]  # cells at (i + .5) / 8
    centres = (torch.arange(8) + 0.5) / 8
    beyond = ((centres - 0.5).abs() / 0.25 - 1).clamp(min=0)
    expected = -3.0 * (beyond[:, None] + beyond[None, :])
    torch.testing.assert_close(prior, expected)
    assert float(prior[2:6, 2:6].abs().max()) == 0.0 and float(prior[0, 0]) < 0
