"""GroupHungarianAssigner: known matchings, optimality against scipy per group, group isolation."""
import itertools

import pytest
import torch
from mmengine.structures import InstanceData
from scipy.optimize import linear_sum_assignment

from mmrefvlm.models.task_modules import GroupHungarianAssigner
from mmrefvlm.models.task_modules.group_matching import solve_grouped_assignment
from mmrefvlm.registry import TASK_UTILS

BOX_COSTS = [dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
             dict(type='IoUCost', iou_mode='giou', weight=2.0)]
META = dict(img_shape=(100, 100), pad_shape=(100, 100))


def _scipy_group_optimum(cost, pred_gids, gt_gids, group):
    """Optimal total cost of one group, by scipy on the group's submatrix."""
    rows = (pred_gids == group).nonzero().flatten()
    cols = (gt_gids == group).nonzero().flatten()
    if len(rows) == 0 or len(cols) == 0:
        return 0.0, 0
    sub = cost[rows][:, cols].double().numpy()
    r, c = linear_sum_assignment(sub)
    return float(sub[r, c].sum()), len(r)


def _check_against_scipy(cost, pred_gids, gt_gids, pred_inds, gt_inds):
    # one-to-one, never across groups
    assert len(set(pred_inds.tolist())) == len(pred_inds)
    assert len(set(gt_inds.tolist())) == len(gt_inds)
    assert torch.equal(pred_gids[pred_inds], gt_gids[gt_inds])
    for group in torch.unique(torch.cat([pred_gids, gt_gids])).tolist():
        in_group = pred_gids[pred_inds] == group
        ours = float(cost[pred_inds[in_group], gt_inds[in_group]].double().sum())
        best, num = _scipy_group_optimum(cost, pred_gids, gt_gids, group)
        assert int(in_group.sum()) == num
        assert ours == pytest.approx(best, abs=1e-9)


def test_builds_from_config_with_mmdet_costs():
    assigner = TASK_UTILS.build(dict(type='GroupHungarianAssigner', match_costs=BOX_COSTS))
    assert isinstance(assigner, GroupHungarianAssigner)
    assert [type(c).__name__ for c in assigner.match_costs] == ['BBoxL1Cost', 'IoUCost']


def test_swapped_targets_inside_a_group_are_matched_back():
    assigner = GroupHungarianAssigner(BOX_COSTS)
    boxes = torch.tensor([[0., 0., 10., 10.], [50., 50., 90., 90.], [20., 60., 40., 80.]])
    pred = InstanceData(bboxes=boxes)
    # targets: group 0 listed in the opposite order, group 1 after it
    gt = InstanceData(bboxes=boxes[[1, 0, 2]])
    pred_inds, gt_inds = assigner.assign(pred, gt, torch.tensor([0, 0, 1]),
                                         torch.tensor([0, 0, 1]), META)
    assert pred_inds.tolist() == [0, 1, 2]
    assert gt_inds.tolist() == [1, 0, 2]


def test_matches_never_cross_groups_even_when_cheaper():
    assigner = GroupHungarianAssigner(BOX_COSTS)
    # prediction 0 sits exactly on the target of group 1, prediction 1 on the target of group 0
    pred = InstanceData(bboxes=torch.tensor([[0., 0., 10., 10.], [50., 50., 90., 90.]]))
    gt = InstanceData(bboxes=torch.tensor([[50., 50., 90., 90.], [0., 0., 10., 10.]]))
    pred_inds, gt_inds = assigner.assign(pred, gt, torch.tensor([0, 1]), torch.tensor([0, 1]),
                                         META)
    assert pred_inds.tolist() == [0, 1]
    assert gt_inds.tolist() == [0, 1]


def test_known_matching_from_a_hand_made_cost():
    # group 7: rows 0, 2 / cols 1, 2; group 3: row 1 / col 0. Optimum of group 7 is the
    # anti-diagonal (1 + 1 < 0 + 5).
    cost = torch.tensor([[9., 0., 1.],
                         [2., 9., 9.],
                         [9., 1., 5.]])
    (pred_inds, gt_inds), = solve_grouped_assignment(
        [cost], [torch.tensor([7, 3, 7])], [torch.tensor([3, 7, 7])])
    assert pred_inds.tolist() == [0, 1, 2]
    assert gt_inds.tolist() == [2, 0, 1]


@pytest.mark.parametrize('max_brute_force_size', [6, 1])
def test_random_groups_sizes_1_to_8_reach_scipy_optimum(max_brute_force_size):
    gen = torch.Generator().manual_seed(0)
    costs, pred_gids, gt_gids = [], [], []
    for sample in range(12):
        sizes = [(s % 8) + 1 for s in range(sample, sample + 3)]
        gids = torch.cat([torch.full((s,), g) for g, s in enumerate(sizes)])
        perm = torch.randperm(len(gids), generator=gen)  # groups interleaved in query order
        n = len(gids)
        if sample % 3 == 0:  # many ties: small integer costs and duplicated target columns
            cost = torch.randint(0, 3, (n, n), generator=gen).float()
            cost[:, 1::2] = cost[:, 0:n - 1:2]
        else:
            cost = torch.randn(n, n, generator=gen)
        costs.append(cost)
        pred_gids.append(gids[perm])
        gt_gids.append(gids[torch.randperm(n, generator=gen)])
    results = solve_grouped_assignment(costs, pred_gids, gt_gids, max_brute_force_size)
    for cost, gp, gg, (pi, gi) in zip(costs, pred_gids, gt_gids, results):
        assert len(pi) == len(gp)  # square groups: every prediction matched
        _check_against_scipy(cost, gp, gg, pi, gi)


def test_unequal_group_sizes_match_min_count_optimally():
    gen = torch.Generator().manual_seed(1)
    for n_pred, n_gt in itertools.product(range(0, 5), repeat=2):
        gp = torch.cat([torch.zeros(n_pred, dtype=torch.long), torch.ones(2, dtype=torch.long)])
        gg = torch.cat([torch.ones(2, dtype=torch.long), torch.zeros(n_gt, dtype=torch.long)])
        cost = torch.rand(len(gp), len(gg), generator=gen)
        (pi, gi), = solve_grouped_assignment([cost], [gp], [gg])
        assert len(pi) == min(n_pred, n_gt) + 2
        _check_against_scipy(cost, gp, gg, pi, gi)


def test_empty_inputs_and_one_sided_groups():
    empty = torch.zeros(0, dtype=torch.long)
    out = solve_grouped_assignment([torch.zeros(0, 2), torch.zeros(3, 0)],
                                   [empty, torch.tensor([0, 1, 2])], [torch.tensor([0, 1]), empty])
    assert all(len(pi) == 0 and len(gi) == 0 for pi, gi in out)
    # group 5 only has predictions, group 6 only targets: nothing matched there
    cost = torch.rand(3, 3)
    (pi, gi), = solve_grouped_assignment([cost], [torch.tensor([5, 0, 5])],
                                         [torch.tensor([6, 0, 6])])
    assert pi.tolist() == [1] and gi.tolist() == [1]
    assigner = GroupHungarianAssigner(BOX_COSTS)
    pi, gi = assigner.assign(InstanceData(bboxes=torch.zeros(0, 4)),
                             InstanceData(bboxes=torch.tensor([[0., 0., 5., 5.]])), empty,
                             torch.tensor([0]), META)
    assert len(pi) == 0 and len(gi) == 0


def test_assign_batch_equals_per_sample_assign():
    assigner = GroupHungarianAssigner(BOX_COSTS)
    gen = torch.Generator().manual_seed(2)
    preds, gts, gps, ggs = [], [], [], []
    for n in (1, 4, 7):
        xy = torch.rand(n, 2, generator=gen) * 60
        wh = torch.rand(n, 2, generator=gen) * 30 + 1
        preds.append(InstanceData(bboxes=torch.cat([xy, xy + wh], 1)))
        xy = torch.rand(n, 2, generator=gen) * 60
        gts.append(InstanceData(bboxes=torch.cat([xy, xy + wh.flip(0)], 1)))
        gps.append(torch.arange(n) % 2)
        ggs.append(torch.arange(n).flip(0) % 2)
    batch = assigner.assign_batch(preds, gts, gps, ggs, [META] * 3)
    for b in range(3):
        single = assigner.assign(preds[b], gts[b], gps[b], ggs[b], META)
        cost = assigner.cost_matrix(preds[b], gts[b], META)
        assert float(cost[batch[b]].sum()) == pytest.approx(float(cost[single].sum()))
        _check_against_scipy(cost, gps[b], ggs[b], *batch[b])


def test_mask_costs_match_the_right_masks():
    assigner = GroupHungarianAssigner([
        dict(type='FocalLossCost', weight=2.0, binary_input=True),
        dict(type='DiceCost', weight=5.0, pred_act=True, naive_dice=True)])
    gt_masks = torch.zeros(3, 8, 8)
    gt_masks[0, :4, :4] = 1
    gt_masks[1, 4:, 4:] = 1
    gt_masks[2, :, :2] = 1
    logits = (gt_masks[[2, 0, 1]] * 2 - 1) * 6  # predictions are a permutation of the targets
    pi, gi = assigner.assign(InstanceData(masks=logits), InstanceData(masks=gt_masks),
                             torch.tensor([0, 0, 0]), torch.tensor([0, 0, 0]), META)
    assert pi.tolist() == [0, 1, 2]
    assert gi.tolist() == [2, 0, 1]


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match='match_costs is empty'):
        GroupHungarianAssigner([])
    with pytest.raises(ValueError, match='does not match'):
        solve_grouped_assignment([torch.zeros(2, 2)], [torch.tensor([0])], [torch.tensor([0, 0])])


def test_sparse_and_negative_group_ids_reach_scipy_optimum():
    # ids far apart (no dense numbering possible) and negative ids take the sorting path
    gen = torch.Generator().manual_seed(3)
    costs, pred_gids, gt_gids = [], [], []
    for ids in ([10**12, -5, 10**12, 7], [-(10**12), -(10**12), 3, 3, 3]):
        gids = torch.tensor(ids)
        costs.append(torch.randn(len(ids), len(ids), generator=gen))
        pred_gids.append(gids[torch.randperm(len(ids), generator=gen)])
        gt_gids.append(gids)
    results = solve_grouped_assignment(costs, pred_gids, gt_gids)
    for cost, gp, gg, (pi, gi) in zip(costs, pred_gids, gt_gids, results):
        assert len(pi) == len(gp)
        _check_against_scipy(cost, gp, gg, pi, gi)
