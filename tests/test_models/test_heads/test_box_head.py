"""RefBoxHead: shapes, padded queries, group matching in the loss, training, gradients."""
import pytest
import torch
from mmengine.structures import InstanceData

from head_checks import (CANVAS, LLM_DIMS, LOCATED, assert_every_parameter_has_a_gradient,
                         batch_inputs, losses_before_and_after_training, small_decoder, total)
from mmrefvlm.models.heads import RefBoxHead
from mmrefvlm.registry import MODELS

PYRAMID_CHANNELS = (8, 16, 16, 32)
STRIDES = (4, 8, 16, 32)
LOCATOR_LOSSES = {'loss_locate', 'loss_dense_bbox', 'loss_dense_iou'}
LAYER_LOSSES = {'loss_bbox', 'loss_iou', 'd0.loss_bbox', 'd0.loss_iou'}


def build_head(**overrides):
    cfg = dict(type='RefBoxHead', in_channels=LLM_DIMS, pyramid_channels=PYRAMID_CHANNELS,
               num_groups=8, **LOCATED)
    cfg.update(overrides)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def make_batch(seed=0):
    """Two samples: sample 0 has groups (0, 0, 1) + one padded slot, sample 1 has group (0, 0)
    + two padded slots and a canvas padded on the bottom/right."""
    queries, query_mask, group_ids, pyramid, metas = batch_inputs(PYRAMID_CHANNELS, STRIDES, seed)
    targets = [
        InstanceData(bboxes=torch.tensor([[4., 4., 20., 30.], [30., 8., 60., 40.],
                                          [10., 40., 30., 60.]]),
                     group_ids=torch.tensor([0, 0, 1])),
        InstanceData(bboxes=torch.tensor([[2., 2., 20., 20.], [24., 10., 50., 44.]]),
                     group_ids=torch.tensor([0, 0])),
    ]
    return queries, query_mask, group_ids, pyramid, targets, metas


def test_shapes_and_predict_frame():
    head = build_head()
    assert isinstance(head, RefBoxHead)
    queries, query_mask, _, pyramid, _, metas = make_batch()
    boxes = head(queries, query_mask, pyramid, metas)
    assert boxes.shape == (2, 2, 4, 4)
    assert bool(((boxes > 0) & (boxes < 1)).all())
    results = head.predict_by_feat(queries, query_mask, pyramid, metas)
    assert [len(r) for r in results] == [3, 2]
    for r, mask, b in zip(results, query_mask, range(2)):
        assert r.bboxes.shape == (int(mask.sum()), 4)
        assert bool((r.bboxes[:, 2:] >= r.bboxes[:, :2]).all())
        assert bool(((r.bboxes >= 0) & (r.bboxes <= CANVAS)).all())
        assert torch.equal(r.scores, torch.ones(len(r)))
        # xyxy canvas px == normalised cxcywh of the last layer × canvas, clipped to the canvas
        cx, cy, w, h = boxes[-1, b][mask].unbind(-1)
        expected = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1) * CANVAS
        torch.testing.assert_close(r.bboxes, expected.clamp(0, CANVAS))


def test_locate_loss_is_the_attention_mass_outside_the_group_boxes():
    """loss_locate = mean over valid queries of -log(attention on tokens inside a box of the
    query's group), computed here by hand from the located log-weights."""
    head = build_head()
    queries, query_mask, group_ids, pyramid, targets, metas = make_batch()
    outputs, aux = head.forward_with_aux(queries, query_mask, pyramid, metas)
    gts = head.matching_targets(targets, outputs, metas)

    def locate_loss(aux):
        return head.locator.loss(aux['log_weights'], aux['token_boxes'], aux['sizes'],
                                 query_mask, group_ids, gts, metas)['loss_locate']

    loss = locate_loss(aux)
    weights = aux['log_weights'].exp()
    assert weights.shape == (2, 4, sum(64 // s * (64 // s) for s in STRIDES))
    centres = []
    for s in STRIDES:
        side = CANVAS // s
        for row in range(side):
            for col in range(side):
                centres.append(((col + 0.5) * s, (row + 0.5) * s))
    expected = []
    for b in range(2):
        for q in range(4):
            if not query_mask[b, q]:
                continue
            boxes = targets[b].bboxes[targets[b].group_ids == group_ids[b, q]]
            mass = sum(float(weights[b, q, n]) for n, (x, y) in enumerate(centres)
                       if any(x0 <= x <= x1 and y0 <= y <= y1 for x0, y0, x1, y1 in boxes.tolist()))
            expected.append(-torch.log(torch.tensor(mass)))
    torch.testing.assert_close(loss, torch.stack(expected).mean(), rtol=1e-4, atol=1e-5)
    # all attention inside the boxes: the loss vanishes
    inside_only = {k: v for k, v in aux.items()}
    inside_only['log_weights'] = torch.full_like(aux['log_weights'], -1e4)
    for b in range(2):
        for q in range(int(query_mask[b].sum())):
            box = targets[b].bboxes[targets[b].group_ids == group_ids[b, q]][0]
            n = next(n for n, (x, y) in enumerate(centres)
                     if box[0] <= x <= box[2] and box[1] <= y <= box[3])
            inside_only['log_weights'][b, q, n] = 0.0
    assert float(locate_loss(inside_only)) < 1e-6


def test_padded_queries_do_not_change_valid_outputs():
    head = build_head().eval()
    queries, query_mask, _, pyramid, _, metas = make_batch()
    before = head(queries, query_mask, pyramid, metas)
    changed = queries.clone()
    changed[~query_mask] = torch.randn(int((~query_mask).sum()), LLM_DIMS) * 10
    after = head(changed, query_mask, pyramid, metas)
    torch.testing.assert_close(after[:, query_mask], before[:, query_mask], atol=1e-6, rtol=0)
    assert torch.isfinite(after).all()
    # while a valid query does influence the other valid queries of its sample (self-attention
    # is on between valid queries; the box deltas start at zero, so give them weights first)
    torch.nn.init.normal_(head.reg_branch.layers[-1].weight)
    before = head(queries, query_mask, pyramid, metas)
    changed = queries.clone()
    changed[0, 0] += 5
    after = head(changed, query_mask, pyramid, metas)
    assert not torch.allclose(after[-1, 0, 1], before[-1, 0, 1])
    torch.testing.assert_close(after[:, 1], before[:, 1])


def test_loss_matches_an_independent_computation():
    head = build_head(aux_loss=False)
    queries, query_mask, group_ids, pyramid, targets, metas = make_batch()
    # one query per group: the matching is forced, so the loss is computable by hand
    query_mask = torch.tensor([[True, False, True, False], [True, False, False, False]])
    group_ids = torch.tensor([[0, -1, 1, -1], [0, -1, -1, -1]])
    targets = [targets[0][[0, 2]], targets[1][[1]]]
    losses = head.loss_by_feat(queries, query_mask, group_ids, pyramid, targets, metas)
    assert set(losses) == {'loss_bbox', 'loss_iou'} | LOCATOR_LOSSES
    boxes = head(queries, query_mask, pyramid, metas)[-1][query_mask]
    gt = torch.cat([t.bboxes for t in targets]) / CANVAS
    gt_cxcywh = torch.cat([(gt[:, :2] + gt[:, 2:]) / 2, gt[:, 2:] - gt[:, :2]], 1)
    expected_l1 = 5.0 * (boxes - gt_cxcywh).abs().sum() / 3
    torch.testing.assert_close(losses['loss_bbox'], expected_l1)
    assert 0 < losses['loss_iou'].item() < 2 * 2.0


def test_swapped_targets_inside_a_group_give_the_same_loss():
    head = build_head()
    queries, query_mask, group_ids, pyramid, targets, metas = make_batch()
    losses = head.loss_by_feat(queries, query_mask, group_ids, pyramid, targets, metas)
    assert set(losses) == LAYER_LOSSES | LOCATOR_LOSSES
    swapped = [targets[0][[1, 0, 2]], targets[1][[1, 0]]]
    losses_swapped = head.loss_by_feat(queries, query_mask, group_ids, pyramid, swapped, metas)
    for name, value in losses.items():
        torch.testing.assert_close(losses_swapped[name], value)


def test_loss_decreases_on_a_fixed_batch():
    first, last = losses_before_and_after_training(build_head(), make_batch())
    assert total(last, ('loss_bbox', 'loss_iou')) < 0.5 * total(first, ('loss_bbox', 'loss_iou'))


@pytest.mark.parametrize('with_targets', [True, False])
def test_every_parameter_gets_a_gradient(with_targets):
    head = build_head()
    queries, query_mask, group_ids, pyramid, targets, metas = make_batch()
    if not with_targets:
        query_mask = torch.zeros_like(query_mask)
        group_ids = torch.full_like(group_ids, -1)
        targets = [InstanceData(bboxes=torch.zeros(0, 4), group_ids=torch.zeros(0).long())
                   for _ in range(2)]
    losses = head.loss_by_feat(queries, query_mask, group_ids, pyramid, targets, metas)
    assert set(losses) == LAYER_LOSSES | LOCATOR_LOSSES
    if not with_targets:
        assert all(v.item() == 0 for v in losses.values())
    assert_every_parameter_has_a_gradient(head, losses)


def test_no_query_at_all():
    head = build_head()
    _, _, _, pyramid, _, metas = make_batch()
    queries = torch.zeros(2, 0, LLM_DIMS)
    query_mask = torch.zeros(2, 0, dtype=torch.bool)
    losses = head.loss_by_feat(queries, query_mask, query_mask.long(), pyramid, [], metas)
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in head.parameters())
    assert [len(r) for r in head.predict_by_feat(queries, query_mask, pyramid, metas)] == [0, 0]


def test_bf16_head_returns_fp32_losses_and_boxes():
    head = build_head().to(torch.bfloat16)
    queries, query_mask, group_ids, pyramid, targets, metas = make_batch()
    pyramid = [feat.bfloat16() for feat in pyramid]
    losses = head.loss_by_feat(queries.bfloat16(), query_mask, group_ids, pyramid, targets, metas)
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())
    results = head.predict_by_feat(queries.bfloat16(), query_mask, pyramid, metas)
    assert [r.bboxes.dtype for r in results] == [torch.float32] * 2


def test_memory_levels_select_the_fused_pyramid():
    """memory_levels=(1, 2, 3): the decoder and the locator read only those levels."""
    head = build_head(memory_levels=(1, 2, 3))
    queries, query_mask, group_ids, pyramid, targets, metas = make_batch()
    _, aux = head.forward_with_aux(queries, query_mask, pyramid, metas)
    assert aux['log_weights'].shape[-1] == sum((CANVAS // s)**2 for s in STRIDES[1:])
    assert aux['sizes'] == [(CANVAS // s, CANVAS // s) for s in STRIDES[1:]]
    losses = head.loss_by_feat(queries, query_mask, group_ids, pyramid, targets, metas)
    sum(losses.values()).backward()
    # the finest level is not read: changing it changes nothing
    changed = [pyramid[0] + 100.0] + list(pyramid[1:])
    torch.testing.assert_close(head(queries, query_mask, changed, metas),
                               head(queries, query_mask, pyramid, metas))
    with pytest.raises(ValueError, match='memory_levels'):
        build_head(memory_levels=(1, 4))


def test_locate_loss_is_zero_when_no_box_covers_a_token_centre():
    """Boxes smaller than the token spacing hold no token centre: loss_locate is 0, not NaN."""
    head = build_head(memory_levels=(3, ))  # stride 32: token centres at 16 and 48 px
    queries, query_mask, group_ids, pyramid, _, metas = make_batch()
    tiny = [InstanceData(bboxes=torch.tensor([[1., 1., 3., 3.]] * 3),
                         group_ids=torch.tensor([0, 0, 1])),
            InstanceData(bboxes=torch.tensor([[20., 20., 22., 22.]] * 2),
                         group_ids=torch.tensor([0, 0]))]
    losses = head.loss_by_feat(queries, query_mask, group_ids, pyramid, tiny, metas)
    assert float(losses['loss_locate']) == 0.0
    assert all(torch.isfinite(v) for v in losses.values())


def test_default_arguments_build_the_papers_detr_head():
    """No locator, positions only in the keys, boxes sigmoid(MLP(state)): the paper's head."""
    head = build_head(locator=None, decoder=small_decoder(positions_in_values=False))
    assert head.locator is None and not head.decoder.positions_in_values
    queries, query_mask, group_ids, pyramid, targets, metas = make_batch()
    losses = head.loss_by_feat(queries, query_mask, group_ids, pyramid, targets, metas)
    assert set(losses) == LAYER_LOSSES
    assert_every_parameter_has_a_gradient(head, losses)
    default = RefBoxHead(LLM_DIMS, PYRAMID_CHANNELS)
    assert default.locator is None and default.num_layers == 6 and default.embed_dims == 256
