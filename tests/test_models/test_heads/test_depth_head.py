"""RefDepthHead: shapes and canvas frame, SILog of every query against its image's map by hand,
valid pixels, training, gradients, the empty-query path."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData

from head_checks import assert_every_parameter_has_a_gradient, losses_before_and_after_training
from mmrefvlm.models.heads import RefDepthHead
from mmrefvlm.registry import MODELS

LLM_DIMS = 24
PYRAMID_CHANNELS = (8, 16, 16)
STRIDES = (4, 8, 16)
CANVAS = 32


def build_head(**overrides):
    cfg = dict(type='RefDepthHead', in_channels=LLM_DIMS, pyramid_channels=PYRAMID_CHANNELS,
               embed_dims=16, init_depth=2.0,
               pixel_decoder=dict(type='PixelDecoder', norm_cfg=dict(type='GN', num_groups=4),
                                  act_cfg=dict(type='ReLU')))
    cfg.update(overrides)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def depth_targets(depth_maps):
    """What :meth:`RefDepthHead.get_targets` gives for these maps (``None``: no map at all)."""
    maps = depth_maps if depth_maps is not None else [None, None]
    return [InstanceData(metainfo=dict(depth_map=depth)) for depth in maps]


def make_batch(seed=0):
    """Sample 0: two depth queries + a padded slot on a full 32×32 image; sample 1: one query on
    a 24×28 image (canvas padding holds garbage depth that must be ignored). Depth maps are
    smooth ramps in metres with a hole of invalid (0) pixels."""
    gen = torch.Generator().manual_seed(seed)
    queries = torch.randn(2, 3, LLM_DIMS, generator=gen)
    query_mask = torch.tensor([[True, True, False], [True, False, False]])
    group_ids = torch.tensor([[0, 0, -1], [0, -1, -1]])
    pyramid = [torch.randn(2, c, CANVAS // s, CANVAS // s, generator=gen)
               for c, s in zip(PYRAMID_CHANNELS, STRIDES)]
    metas = [dict(img_shape=(32, 32), pad_shape=(CANVAS, CANVAS)),
             dict(img_shape=(24, 28), pad_shape=(CANVAS, CANVAS))]
    rows = torch.arange(CANVAS, dtype=torch.float32)[:, None].expand(CANVAS, CANVAS)
    cols = rows.t()
    depth0 = 1.0 + rows / 8
    depth0[4:8, 4:8] = 0.0
    depth1 = 6.0 - cols / 8
    depth1[24:] = 50.0
    depth1[:, 28:] = 50.0
    return queries, query_mask, group_ids, pyramid, metas, [depth0[None], depth1[None]]


def test_shapes_and_predict_on_the_canvas():
    head = build_head()
    assert isinstance(head, RefDepthHead)
    queries, query_mask, _, pyramid, metas, _ = make_batch()
    log_depth = head(queries, query_mask, pyramid, metas)
    assert log_depth.shape == (2, 3, CANVAS // 4, CANVAS // 4)
    results = head.predict_by_feat(queries, query_mask, pyramid, metas)
    assert [len(r) for r in results] == [2, 1]
    for b, r in enumerate(results):
        assert r.depth.shape == (len(r), CANVAS, CANVAS)
        assert torch.equal(r.scores, torch.ones(len(r)))
        expected = F.interpolate(log_depth[b][query_mask[b]][:, None], size=(CANVAS, CANVAS),
                                 mode='bilinear', align_corners=False)[:, 0].exp()
        h, w = metas[b]['img_shape']
        torch.testing.assert_close(r.depth[:, :h, :w], expected[:, :h, :w])
        assert bool((r.depth[:, :h, :w] > 0).all())
        assert float(r.depth[:, h:].abs().sum() + r.depth[:, :, w:].abs().sum()) == 0
    # the query conditions the map; padding never changes a valid query's map
    assert not torch.allclose(results[0].depth[0], results[0].depth[1])
    changed = queries.clone()
    changed[0, 2] = 100.0
    torch.testing.assert_close(head(changed, query_mask, pyramid, metas)[query_mask],
                               log_depth[query_mask])


def test_loss_is_silog_of_every_query_against_its_image_map():
    head = build_head(loss_depth=dict(type='SILogLoss', lambda_=0.5, loss_weight=2.0))
    queries, query_mask, group_ids, pyramid, metas, depth_maps = make_batch()
    losses = head.loss_by_feat(queries, query_mask, group_ids, pyramid,
        depth_targets(depth_maps), metas)
    assert set(losses) == {'loss_depth'}
    log_depth = head(queries, query_mask, pyramid, metas).detach()
    per_query = []
    for b in range(2):
        h, w = metas[b]['img_shape']
        target = depth_maps[b][0, :h, :w].numpy()
        for q in np.flatnonzero(query_mask[b].numpy()):
            pred = F.interpolate(log_depth[b, q][None, None], size=(CANVAS, CANVAS),
                                 mode='bilinear', align_corners=False)[0, 0, :h, :w].numpy()
            g = pred[target > 0] - np.log(target[target > 0])
            per_query.append((g ** 2).mean() - 0.5 * g.mean() ** 2)
    assert losses['loss_depth'].item() == pytest.approx(2.0 * np.mean(per_query), rel=1e-5)
    # a sample without a depth map contributes nothing
    only_first = head.loss_by_feat(queries, query_mask, group_ids, pyramid,
        depth_targets([depth_maps[0], None]), metas)
    assert only_first['loss_depth'].item() == pytest.approx(2.0 * np.mean(per_query[:2]),
                                                            rel=1e-5)


def test_canvas_padding_depth_is_ignored():
    head = build_head()
    queries, query_mask, group_ids, pyramid, metas, depth_maps = make_batch()
    before = head.loss_by_feat(queries, query_mask, group_ids, pyramid,
        depth_targets(depth_maps), metas)
    changed = [depth_maps[0], depth_maps[1].clone()]
    changed[1][:, 24:] = 0.3
    after = head.loss_by_feat(queries, query_mask, group_ids, pyramid,
        depth_targets(changed), metas)
    torch.testing.assert_close(after['loss_depth'], before['loss_depth'])
    changed[1][:, :24, :28] *= 1.5
    moved = head.loss_by_feat(queries, query_mask, group_ids, pyramid,
        depth_targets(changed), metas)
    assert not torch.allclose(moved['loss_depth'], before['loss_depth'])


def test_loss_decreases_on_a_fixed_batch():
    queries, query_mask, group_ids, pyramid, metas, depth_maps = make_batch()
    first, last = losses_before_and_after_training(
        build_head(), (queries, query_mask, group_ids, pyramid, depth_targets(depth_maps), metas),
        lr=3e-3)
    assert last['loss_depth'] < 0.3 * first['loss_depth']


@pytest.mark.parametrize('with_targets', [True, False])
def test_every_parameter_gets_a_gradient(with_targets):
    head = build_head()
    queries, query_mask, group_ids, pyramid, metas, depth_maps = make_batch()
    if not with_targets:
        query_mask = torch.zeros_like(query_mask)
        group_ids = torch.full_like(group_ids, -1)
        depth_maps = None
    losses = head.loss_by_feat(queries, query_mask, group_ids, pyramid,
        depth_targets(depth_maps), metas)
    assert set(losses) == {'loss_depth'}
    if not with_targets:
        assert losses['loss_depth'].item() == 0
        results = head.predict_by_feat(queries, query_mask, pyramid, metas)
        assert [len(r) for r in results] == [0, 0]
    assert_every_parameter_has_a_gradient(head, losses)


def test_no_query_at_all_and_no_valid_pixel():
    head = build_head()
    _, _, _, pyramid, metas, depth_maps = make_batch()
    queries = torch.zeros(2, 0, LLM_DIMS)
    query_mask = torch.zeros(2, 0, dtype=torch.bool)
    losses = head.loss_by_feat(queries, query_mask, query_mask.long(), pyramid, [], metas)
    losses['loss_depth'].backward()
    assert all(p.grad is not None for p in head.parameters())
    queries, query_mask, group_ids, _, _, _ = make_batch()
    empty = [torch.zeros_like(d) for d in depth_maps]
    zero = head.loss_by_feat(queries, query_mask, group_ids, pyramid, depth_targets(empty), metas)
    assert zero['loss_depth'].item() == 0 and zero['loss_depth'].requires_grad


def test_depth_maps_are_required_and_checked():
    head = build_head()
    queries, query_mask, group_ids, pyramid, metas, depth_maps = make_batch()
    with pytest.raises(ValueError, match='for 2 samples'):
        head.loss_by_feat(queries, query_mask, group_ids, pyramid, [], metas)
    with pytest.raises(ValueError, match=r'depth map of sample 0 is \(16, 16\)'):
        head.loss_by_feat(queries, query_mask, group_ids, pyramid,
            depth_targets([torch.ones(1, 16, 16), depth_maps[1]]), metas)
    with pytest.raises(ValueError, match='init_depth'):
        build_head(init_depth=0.0)


def test_bf16_head_returns_fp32_loss_and_depth():
    head = build_head().to(torch.bfloat16)
    queries, query_mask, group_ids, pyramid, metas, depth_maps = make_batch()
    pyramid = [feat.bfloat16() for feat in pyramid]
    losses = head.loss_by_feat(queries.bfloat16(), query_mask, group_ids, pyramid,
        depth_targets(depth_maps), metas)
    assert losses['loss_depth'].dtype == torch.float32
    assert torch.isfinite(losses['loss_depth'])
    results = head.predict_by_feat(queries.bfloat16(), query_mask, pyramid, metas)
    assert [r.depth.dtype for r in results] == [torch.float32] * 2
