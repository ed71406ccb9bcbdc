"""RefKeypointHead: shapes and frames, losses by hand, group matching, training, gradients,
initialisation from a box head."""
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from head_checks import (CANVAS, LLM_DIMS, LOCATED, assert_every_parameter_has_a_gradient,
                         batch_inputs, losses_before_and_after_training, total)
from mmrefvlm.models.heads import RefBoxHead, RefKeypointHead
from mmrefvlm.registry import MODELS

PYRAMID_CHANNELS = (8, 16)
STRIDES = (8, 16)
K = 3
SIGMAS = (0.3, 0.4, 0.5)
TINY = dict(in_channels=LLM_DIMS, pyramid_channels=PYRAMID_CHANNELS, num_groups=8, **LOCATED)
ALL_LOSSES = {'loss_bbox', 'loss_iou', 'loss_keypoint', 'loss_oks', 'loss_visibility'}


def build_head(**overrides):
    cfg = dict(TINY, type='RefKeypointHead', num_keypoints=K, keypoint_sigmas=SIGMAS)
    cfg.update(overrides)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def make_batch(seed=0):
    """Sample 0: groups (0, 0, 1) + a padded slot; sample 1: group (0, 0) + two padded slots on
    a 48×56 image. Keypoints lie inside their boxes; v mixes 0, 1 and 2."""
    queries, query_mask, group_ids, pyramid, metas = batch_inputs(PYRAMID_CHANNELS, STRIDES, seed)
    boxes = [torch.tensor([[4., 4., 20., 30.], [30., 8., 60., 40.], [10., 40., 30., 60.]]),
             torch.tensor([[2., 2., 20., 20.], [24., 10., 50., 44.]])]
    vis = [torch.tensor([[2., 2., 0.], [2., 1., 2.], [0., 2., 2.]]),
           torch.tensor([[2., 2., 2.], [1., 0., 2.]])]
    gen = torch.Generator().manual_seed(seed + 1)  # keypoint positions inside the boxes
    targets = []
    for box, v, groups in zip(boxes, vis, ([0, 0, 1], [0, 0])):
        frac = torch.rand(len(box), K, 2, generator=gen)
        xy = box[:, None, :2] + frac * (box[:, None, 2:] - box[:, None, :2])
        targets.append(InstanceData(bboxes=box, keypoints=torch.cat([xy, v[..., None]], -1),
                                    group_ids=torch.tensor(groups)))
    return queries, query_mask, group_ids, pyramid, targets, metas


def test_shapes_frames_and_predict():
    head = build_head()
    assert isinstance(head, RefBoxHead)
    queries, query_mask, _, pyramid, _, metas = make_batch()
    outputs = head(queries, query_mask, pyramid, metas)
    assert outputs.shape == (2, 2, 4, 4 + 3 * K)
    boxes = outputs[..., :4]
    keypoints = outputs[..., 4:4 + 2 * K].unflatten(-1, (K, 2))
    # documented parameterisation: within one box size of the box centre
    offset = (keypoints - boxes[..., None, :2]).abs()
    assert bool((offset <= boxes[..., None, 2:] + 1e-6).all())
    results = head.predict_by_feat(queries, query_mask, pyramid, metas)
    assert [len(r) for r in results] == [3, 2]
    for b, r in enumerate(results):
        assert r.keypoints.shape == (len(r), K, 3) and r.bboxes.shape == (len(r), 4)
        assert torch.equal(r.scores, torch.ones(len(r)))
        vis = r.keypoints[..., 2]
        assert bool(((vis > 0) & (vis < 1)).all())
        assert bool(((r.keypoints[..., :2] >= 0) & (r.keypoints[..., :2] <= CANVAS)).all())
        expected_xy = (keypoints[-1, b][query_mask[b]] * CANVAS).clamp(0, CANVAS)
        torch.testing.assert_close(r.keypoints[..., :2], expected_xy)
        torch.testing.assert_close(
            vis, outputs[-1, b][query_mask[b]][:, 4 + 2 * K:].sigmoid())


def test_losses_match_an_independent_computation():
    head = build_head(aux_loss=False)
    queries, _, _, pyramid, targets, metas = make_batch()
    # one query per group: the matching is forced
    query_mask = torch.tensor([[True, False, True, False], [True, False, False, False]])
    group_ids = torch.tensor([[0, -1, 1, -1], [0, -1, -1, -1]])
    targets = [targets[0][[1, 2]], targets[1][[0]]]
    losses = head.loss_by_feat(queries, query_mask, group_ids, pyramid, targets, metas)
    assert set(losses) == ALL_LOSSES | {'loss_locate', 'loss_dense_bbox', 'loss_dense_iou'}
    out = head(queries, query_mask, pyramid, metas)[-1][query_mask].detach().double().numpy()
    gt = torch.cat([t.keypoints for t in targets]).double().numpy()
    boxes = torch.cat([t.bboxes for t in targets]).double().numpy()
    pred_xy = out[:, 4:4 + 2 * K].reshape(-1, K, 2) * CANVAS
    labelled = gt[..., 2] > 0
    # L1 on normalised x, y of labelled keypoints, weight 10, averaged over those keypoints
    l1 = np.abs(pred_xy - gt[..., :2]).sum(-1) / CANVAS
    assert losses['loss_keypoint'].item() == pytest.approx(
        10.0 * (l1 * labelled).sum() / labelled.sum(), rel=1e-4)
    # OKS with s² = box area, k = 2σ, weight 4
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    dist2 = ((pred_xy - gt[..., :2]) ** 2).sum(-1)
    sim = np.exp(-dist2 / (2 * areas[:, None] * (2 * np.array(SIGMAS)) ** 2))
    oks = (sim * labelled).sum(1) / labelled.sum(1)
    assert losses['loss_oks'].item() == pytest.approx(4.0 * (1 - oks).mean(), rel=1e-4)
    # BCE of every keypoint logit against v > 0, averaged over all keypoints
    logits = out[:, 4 + 2 * K:]
    bce = np.logaddexp(0, logits) - labelled * logits
    assert losses['loss_visibility'].item() == pytest.approx(bce.mean(), rel=1e-4)


def test_swapped_targets_inside_a_group_give_the_same_loss():
    head = build_head()
    queries, query_mask, group_ids, pyramid, targets, metas = make_batch()
    losses = head.loss_by_feat(queries, query_mask, group_ids, pyramid, targets, metas)
    assert set(losses) == ALL_LOSSES | {'d0.' + name for name in ALL_LOSSES} | {'loss_locate', 'loss_dense_bbox', 'loss_dense_iou'}
    swapped = [targets[0][[1, 0, 2]], targets[1][[1, 0]]]
    losses_swapped = head.loss_by_feat(queries, query_mask, group_ids, pyramid, swapped, metas)
    for name, value in losses.items():
        torch.testing.assert_close(losses_swapped[name], value)


def test_oks_cost_decides_the_matching_when_boxes_are_equal():
    """Two targets of one group with the same box: only the keypoint cost can tell them apart."""
    head = build_head(aux_loss=False, assigner=dict(
        type='GroupHungarianAssigner',
        match_costs=[dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
                     dict(type='KeypointOKSCost', weight=4.0)]))
    box = torch.tensor([0., 0., 64., 64.])
    kpts = torch.tensor([[[10., 10., 2.]] * K, [[50., 50., 2.]] * K])
    pred = InstanceData(bboxes=box.expand(2, 4), keypoints=kpts[[1, 0], :, :2])
    gt = InstanceData(bboxes=box.expand(2, 4), keypoints=kpts)
    pred_inds, gt_inds = head.assigner.assign(pred, gt, torch.tensor([0, 0]),
                                              torch.tensor([0, 0]), head.match_meta(dict(
                                                  img_shape=(64, 64), pad_shape=(64, 64))))
    assert gt_inds[pred_inds.argsort()].tolist() == [1, 0]


def test_loss_decreases_on_a_fixed_batch():
    first, last = losses_before_and_after_training(build_head(), make_batch())
    assert total(last, ALL_LOSSES) < 0.5 * total(first, ALL_LOSSES)
    assert last['loss_keypoint'] < 0.5 * first['loss_keypoint']
    assert last['loss_oks'] < first['loss_oks']


@pytest.mark.parametrize('with_targets', [True, False])
def test_every_parameter_gets_a_gradient(with_targets):
    head = build_head()
    queries, query_mask, group_ids, pyramid, targets, metas = make_batch()
    if not with_targets:
        query_mask = torch.zeros_like(query_mask)
        group_ids = torch.full_like(group_ids, -1)
        targets = [InstanceData(bboxes=torch.zeros(0, 4), keypoints=torch.zeros(0, K, 3),
                                group_ids=torch.zeros(0).long()) for _ in range(2)]
    losses = head.loss_by_feat(queries, query_mask, group_ids, pyramid, targets, metas)
    assert set(losses) == ALL_LOSSES | {'d0.' + name for name in ALL_LOSSES} | {'loss_locate', 'loss_dense_bbox', 'loss_dense_iou'}
    if not with_targets:
        assert all(v.item() == 0 for v in losses.values())
        results = head.predict_by_feat(queries, query_mask, pyramid, metas)
        assert [len(r) for r in results] == [0, 0]
    assert_every_parameter_has_a_gradient(head, losses)


def _box_head_state():
    torch.manual_seed(123)
    return MODELS.build(dict(TINY, type='RefBoxHead')).state_dict()


def _check_initialised(head, box_state, report):
    own = head.state_dict()
    assert report['loaded'] == sorted(box_state)
    for key, value in box_state.items():
        assert torch.equal(own[key], value), key
    assert report['missing'] and all(k.startswith(('kpt_branch.', 'vis_branch.'))
                                     for k in report['missing'])
    assert report['missing'] == sorted(set(own) - set(box_state))
    assert report['unexpected'] == []


def test_init_from_a_box_head_state_dict():
    box_state = _box_head_state()
    head = build_head()
    kpt_before = {k: v.clone() for k, v in head.state_dict().items() if k.startswith('kpt_')}
    assert not torch.equal(head.state_dict()['reg_branch.layers.0.weight'],
                           box_state['reg_branch.layers.0.weight'])
    report = head.init_from_box_head(box_state)
    _check_initialised(head, box_state, report)
    for key, value in kpt_before.items():
        assert torch.equal(head.state_dict()[key], value)


def test_init_from_a_full_refvlm_checkpoint_file(tmp_path):
    box_state = _box_head_state()
    state = {f'heads.box.{k}': v for k, v in box_state.items()}
    state['heads.mask.input_proj.0.weight'] = torch.zeros(3)
    state['neck.proj.weight'] = torch.zeros(2)
    path = tmp_path / 'stage2.pth'
    torch.save(dict(state_dict=state, meta=dict(epoch=1)), path)
    head = build_head(box_head_checkpoint=str(path))
    head.init_weights()
    for key, value in box_state.items():
        assert torch.equal(head.state_dict()[key], value), key
    _check_initialised(head, box_state, head.init_from_box_head(str(path)))


def test_configuration_errors_name_the_field():
    with pytest.raises(ValueError, match='keypoint_sigmas'):
        build_head(keypoint_sigmas=(0.1, 0.1))
    head = build_head()
    queries, query_mask, group_ids, pyramid, targets, metas = make_batch()
    del targets[1].keypoints
    with pytest.raises(ValueError, match=r'targets\[1\] has no `keypoints`'):
        head.loss_by_feat(queries, query_mask, group_ids, pyramid, targets, metas)


def test_bf16_head_returns_fp32_losses_and_keypoints():
    head = build_head().to(torch.bfloat16)
    queries, query_mask, group_ids, pyramid, targets, metas = make_batch()
    pyramid = [feat.bfloat16() for feat in pyramid]
    losses = head.loss_by_feat(queries.bfloat16(), query_mask, group_ids, pyramid, targets, metas)
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())
    results = head.predict_by_feat(queries.bfloat16(), query_mask, pyramid, metas)
    assert [r.keypoints.dtype for r in results] == [torch.float32] * 2
