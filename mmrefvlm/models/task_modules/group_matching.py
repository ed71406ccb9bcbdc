"""Optimal one-to-one matching inside groups, every group of a batch solved at once.

Our own (the paper's Parallel Group Hungarian Matching, §4.3 Eq. 5–8): the cost matrices of all
samples are cut into one padded tensor ``[G, K, K]`` (one slice per (sample, group); entries that
would pair a row or column with another group's are ``+inf``, Eq. 6) and every group of size
``K <= max_brute_force_size`` is solved exactly in one vectorised pass: the total cost of every
permutation of ``range(K)`` is gathered from a precomputed permutation table and the cheapest one
kept. Larger groups (rare: a phrase with more than ``max_brute_force_size`` instances) fall back to
``scipy.optimize.linear_sum_assignment``, one call per such group.

Unequal group sizes (``n_pred != n_gt``) are made square with zero-cost dummy rows/columns, the
standard reduction, so exactly ``min(n_pred, n_gt)`` real pairs are matched.
"""
import itertools
from typing import Dict, List, Sequence, Tuple

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

_PERMUTATION_TABLES: Dict[Tuple[int, str], Tensor] = {}


def permutation_table(size: int, device: torch.device) -> Tensor:
    """All permutations of ``range(size)``, cached per device.

    Returns:
        Tensor: ``[size!, size]`` long; row ``p`` maps row ``r`` of a cost matrix to column
        ``table[p, r]``.
    """
    key = (size, str(device))
    if key not in _PERMUTATION_TABLES:
        perms = list(itertools.permutations(range(size)))
        _PERMUTATION_TABLES[key] = torch.tensor(perms, dtype=torch.long, device=device).view(
            len(perms), size)
    return _PERMUTATION_TABLES[key]


def _rank_within(index: Tensor, num_groups: int) -> Tensor:
    """Position of each element among the elements with the same index (in input order).

    Args:
        index: ``[n]`` long in ``[0, num_groups)``.

    Returns:
        Tensor: ``[n]`` long, 0 for the first element of its group, 1 for the next…
    """
    if index.numel() == 0:
        return index.clone()
    one_hot = torch.nn.functional.one_hot(index, num_groups)
    return (one_hot.cumsum(0) - 1).gather(1, index[:, None]).squeeze(1)


def _group_slots(sample_pred: Tensor, group_pred: Tensor, sample_gt: Tensor,
                 group_gt: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Lay out the rows and columns of every (sample, group) pair in a padded table.

    Args:
        sample_pred, group_pred: ``[P]`` long, sample index and group id of each prediction.
        sample_gt, group_gt: ``[T]`` long, the same for each target.

    Returns:
        tuple: ``pred_slot [G, K]`` and ``gt_slot [G, K]`` (global row/column index, -1 on
        padding) and ``group_size [G]`` = ``max(n_pred, n_gt)`` of each group.
    """
    keys = torch.cat([torch.stack([sample_pred, group_pred], 1),
                      torch.stack([sample_gt, group_gt], 1)])
    _, inverse = torch.unique(keys, dim=0, return_inverse=True)
    num_groups = int(inverse.max()) + 1
    inv_pred, inv_gt = inverse[:group_pred.numel()], inverse[group_pred.numel():]
    rank_pred = _rank_within(inv_pred, num_groups)
    rank_gt = _rank_within(inv_gt, num_groups)
    group_size = torch.maximum(torch.bincount(inv_pred, minlength=num_groups),
                               torch.bincount(inv_gt, minlength=num_groups))
    width = int(group_size.max())
    pred_slot = inverse.new_full((num_groups, width), -1)
    gt_slot = inverse.new_full((num_groups, width), -1)
    pred_slot[inv_pred, rank_pred] = torch.arange(inv_pred.numel(), device=inverse.device)
    gt_slot[inv_gt, rank_gt] = torch.arange(inv_gt.numel(), device=inverse.device)
    return pred_slot, gt_slot, group_size


def _padded_group_costs(cost: Tensor, pred_slot: Tensor, gt_slot: Tensor,
                        group_size: Tensor) -> Tensor:
    """Cut the global cost matrix into square per-group slices (paper Eq. 5–6).

    Args:
        cost: ``[P, T]`` block-diagonal cost of all samples (off-diagonal blocks unused).
        pred_slot, gt_slot: ``[G, K]`` from :func:`_group_slots`.
        group_size: ``[G]``.

    Returns:
        Tensor: ``[G, K, K]``: real costs where both slots exist, 0 for the dummy row/column
        pairs inside a group (``< group_size``) and for padding × padding, ``+inf`` between a
        group's slots and the padding beyond its size, so any finite permutation keeps groups
        apart and matches ``min(n_pred, n_gt)`` real pairs.
    """
    width = pred_slot.shape[1]
    block = cost[pred_slot.clamp(min=0)[:, :, None], gt_slot.clamp(min=0)[:, None, :]]
    real = (pred_slot >= 0)[:, :, None] & (gt_slot >= 0)[:, None, :]
    inside = torch.arange(width, device=cost.device)[None, :] < group_size[:, None]
    crosses = inside[:, :, None] != inside[:, None, :]
    padded = torch.where(real, block, torch.zeros_like(block))
    return padded.masked_fill(crosses, float('inf'))


def _brute_force(costs: Tensor) -> Tensor:
    """Exact minimum-cost permutation of every ``[K, K]`` slice.

    Args:
        costs: ``[G, K, K]``.

    Returns:
        Tensor: ``[G, K]`` long, column chosen for each row.
    """
    width = costs.shape[-1]
    perms = permutation_table(width, costs.device)
    rows = torch.arange(width, device=costs.device)[None, :]
    totals = costs[:, rows, perms].sum(-1)  # [G, K!]
    return perms[totals.argmin(1)]


def _solve_one_with_scipy(cost: Tensor) -> Tuple[Tensor, Tensor]:
    """``linear_sum_assignment`` on one rectangular ``[n_pred, n_gt]`` cost (CPU)."""
    rows, cols = linear_sum_assignment(cost.detach().cpu().numpy())
    return (torch.as_tensor(rows, dtype=torch.long, device=cost.device),
            torch.as_tensor(cols, dtype=torch.long, device=cost.device))


def solve_grouped_assignment(
        costs: Sequence[Tensor], pred_group_ids: Sequence[Tensor],
        gt_group_ids: Sequence[Tensor],
        max_brute_force_size: int = 6) -> List[Tuple[Tensor, Tensor]]:
    """Optimal one-to-one matching restricted to equal group ids, for a batch of samples.

    Args:
        costs: per sample ``[n_pred_b, n_gt_b]`` cost matrices.
        pred_group_ids: per sample ``[n_pred_b]`` long group id of each prediction.
        gt_group_ids: per sample ``[n_gt_b]`` long group id of each target.
        max_brute_force_size: groups up to this size (``max(n_pred, n_gt)``) are solved by the
            vectorised permutation search, larger ones by scipy.

    Returns:
        list: per sample ``(pred_inds, gt_inds)``, long ``[m_b]`` each, sorted by ``pred_inds``;
        every group contributes ``min(n_pred, n_gt)`` pairs with the minimum total cost.
    """
    if not len(costs) == len(pred_group_ids) == len(gt_group_ids):
        raise ValueError(
            f'solve_grouped_assignment: got {len(costs)} cost matrices, '
            f'{len(pred_group_ids)} prediction group-id vectors and {len(gt_group_ids)} target '
            'group-id vectors; they must be one per sample')
    device = costs[0].device if len(costs) else torch.device('cpu')
    empty = torch.zeros(0, dtype=torch.long, device=device)
    for b, (cost, gp, gg) in enumerate(zip(costs, pred_group_ids, gt_group_ids)):
        if cost.shape != (gp.numel(), gg.numel()):
            raise ValueError(
                f'solve_grouped_assignment: sample {b}: cost matrix {tuple(cost.shape)} does not '
                f'match {gp.numel()} prediction and {gg.numel()} target group ids')
    n_pred = [int(gp.numel()) for gp in pred_group_ids]
    n_gt = [int(gg.numel()) for gg in gt_group_ids]
    if sum(n_pred) == 0 or sum(n_gt) == 0:
        return [(empty, empty) for _ in costs]

    big_cost = torch.zeros(sum(n_pred), sum(n_gt), dtype=torch.float64, device=device)
    pred_offsets = [0] + list(itertools.accumulate(n_pred))
    gt_offsets = [0] + list(itertools.accumulate(n_gt))
    for b, cost in enumerate(costs):
        big_cost[pred_offsets[b]:pred_offsets[b + 1],
                 gt_offsets[b]:gt_offsets[b + 1]] = cost.detach().to(device, torch.float64)
    sample_pred = torch.repeat_interleave(
        torch.arange(len(costs), device=device), torch.tensor(n_pred, device=device))
    sample_gt = torch.repeat_interleave(
        torch.arange(len(costs), device=device), torch.tensor(n_gt, device=device))
    group_pred = torch.cat([gp.to(device, torch.long) for gp in pred_group_ids])
    group_gt = torch.cat([gg.to(device, torch.long) for gg in gt_group_ids])

    pred_slot, gt_slot, group_size = _group_slots(sample_pred, group_pred, sample_gt, group_gt)
    rows_out, cols_out = [], []
    small = group_size <= max_brute_force_size
    if small.any():
        width = int(group_size[small].max())
        s_pred, s_gt = pred_slot[small, :width], gt_slot[small, :width]
        cols = _brute_force(_padded_group_costs(big_cost, s_pred, s_gt, group_size[small]))
        matched_gt = s_gt.gather(1, cols)
        keep = (s_pred >= 0) & (matched_gt >= 0)
        rows_out.append(s_pred[keep])
        cols_out.append(matched_gt[keep])
    for g in torch.nonzero(~small).flatten().tolist():
        preds = pred_slot[g][pred_slot[g] >= 0]
        gts = gt_slot[g][gt_slot[g] >= 0]
        r, c = _solve_one_with_scipy(big_cost[preds][:, gts])
        rows_out.append(preds[r])
        cols_out.append(gts[c])
    all_rows, all_cols = torch.cat(rows_out), torch.cat(cols_out)
    order = all_rows.argsort()
    all_rows, all_cols = all_rows[order], all_cols[order]
    sample_of_row = sample_pred[all_rows]

    results = []
    for b in range(len(costs)):
        in_b = sample_of_row == b
        results.append((all_rows[in_b] - pred_offsets[b], all_cols[in_b] - gt_offsets[b]))
    return results
