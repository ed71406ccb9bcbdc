"""Optimal one-to-one matching inside groups, every group of a batch solved at once.

Our own (the paper's Parallel Group Hungarian Matching, §4.3 Eq. 5–8). Each (sample, group)
pair's own ``[n_pred, n_gt]`` cost block is gathered from one flat copy of the samples' cost
matrices in one indexing pass and copied to the CPU as float64 (pairs across groups are never
formed, Eq. 6): beyond that copy of the input, memory is linear in Σ(group size²), never in
(Σ queries)². Groups are bucketed by shape, and
every bucket whose groups have ``k = max(n_pred, n_gt) <= max_brute_force_size`` is solved
exactly in one vectorised pass: by comparing all ``k!`` permutations for ``k <= 4``, above that
by dynamic programming over column subsets (row ``r`` takes one column not yet taken by rows
``0..r-1``; ``k·2^(k-1)`` candidate sums per group instead of ``k·k!``). Larger groups (rare: a
phrase with more instances than that) go to ``scipy.optimize.linear_sum_assignment``, one call
per such group.

Unequal group sizes (``n_pred != n_gt``) are made square with zero-cost dummy rows/columns, the
standard reduction, so exactly ``min(n_pred, n_gt)`` real pairs are matched.
"""
import functools
import itertools
from typing import List, Sequence, Tuple

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor


# Up to this size, enumerating the k! permutations in one gather takes fewer numpy calls than
# the k layers of the subset DP; beyond it the k·k! sums outgrow the DP's k·2^(k-1).
ENUMERATE_UP_TO = 4


@functools.lru_cache(maxsize=None)
def permutation_table(size: int) -> np.ndarray:
    """``[size!, size]`` int64, every permutation of ``range(size)``."""
    return np.array(list(itertools.permutations(range(size))), dtype=np.int64).reshape(-1, size)


@functools.lru_cache(maxsize=None)
def subset_layers(size: int) -> Tuple[Tuple[Tuple[np.ndarray, np.ndarray, np.ndarray], ...],
                                      np.ndarray]:
    """The column-subset lattice of the assignment DP for ``size`` rows and columns.

    Returns:
        tuple: ``layers``, one entry per row ``r``: ``masks [M_r]`` (the column subsets of
        ``r + 1`` columns, as bit masks), ``columns [M_r, r + 1]`` (the columns of each subset,
        the candidates for row ``r``) and ``prev [M_r, r + 1]`` (each subset without that
        column); and ``position [2^size]``, the index of each mask inside its layer.
    """
    layers = []
    position = np.zeros(1 << size, dtype=np.int64)
    for row in range(size):
        masks = np.array([m for m in range(1 << size) if bin(m).count('1') == row + 1],
                         dtype=np.int64)
        columns = np.array([[j for j in range(size) if m >> j & 1] for m in masks.tolist()],
                           dtype=np.int64).reshape(len(masks), row + 1)
        layers.append((masks, columns, masks[:, None] ^ (1 << columns)))
        position[masks] = np.arange(len(masks))
    return tuple(layers), position


def solve_square_groups(costs: np.ndarray) -> np.ndarray:
    """Exact minimum-cost permutation of every ``[k, k]`` slice: all permutations compared at
    once for ``k <= ENUMERATE_UP_TO``, else by subset DP.

    Args:
        costs: ``[G, k, k]`` float64.

    Returns:
        np.ndarray: ``[G, k]`` int64, the column matched to each row.
    """
    num, size = costs.shape[:2]
    if size <= ENUMERATE_UP_TO:
        perms = permutation_table(size)
        return perms[costs[:, np.arange(size), perms].sum(-1).argmin(1)]  # sums: [G, k!]
    layers, position = subset_layers(size)
    best = np.zeros((num, 1 << size))  # best[:, m]: rows 0..|m|-1 matched to the columns of m
    choices = []
    for row, (masks, columns, prev) in enumerate(layers):
        candidates = best[:, prev] + costs[:, row, columns]  # [G, M_r, r + 1]
        best[:, masks] = candidates.min(-1)
        choices.append(candidates.argmin(-1))
    matched = np.zeros((num, size), dtype=np.int64)
    mask = np.full(num, (1 << size) - 1, dtype=np.int64)
    groups = np.arange(num)
    for row in range(size - 1, -1, -1):
        at = position[mask]
        column = layers[row][1][at, choices[row][groups, at]]
        matched[:, row] = column
        mask = mask ^ (1 << column)
    return matched


def _group_members(index: np.ndarray, num_groups: int) -> Tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]:
    """The elements of each group, in input order.

    Args:
        index: ``[n]`` int64 group of each element, in ``[0, num_groups)``.

    Returns:
        tuple: ``order [n]`` (element indices sorted by group, input order inside a group),
        ``start [G]`` (offset of each group in ``order``) and ``count [G]``.
    """
    # numpy's stable sort of keys of 16 bits or fewer is a linear radix sort
    order = np.argsort(index.astype(np.min_scalar_type(num_groups)), kind='stable')
    count = np.bincount(index, minlength=num_groups)
    return order, np.cumsum(count) - count, count


def _pair_ids(sample: np.ndarray, group: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Number the distinct (sample, group) pairs.

    Args:
        sample, group: ``[n]`` int64 sample index and group id of each element.

    Returns:
        tuple: ``pairs [G, 2]`` the distinct (sample, group) pairs in sorted order and
        ``index [n]`` the pair of each element.
    """
    low = int(group.min())
    span = int(group.max()) - low + 1
    key = sample * span + (group - low)
    size = (int(sample.max()) + 1) * span
    if size <= 4 * len(key) + 1024:  # a small key range (group ids are ordinals): no sort
        present = np.zeros(size, dtype=bool)
        present[key] = True
        keys = np.flatnonzero(present)
        index = (np.cumsum(present) - 1)[key]
    else:
        keys, index = np.unique(key, return_inverse=True)
    return np.stack([keys // span, keys % span + low], 1), index


def _validate(costs: Sequence[Tensor], pred_group_ids: Sequence[Tensor],
              gt_group_ids: Sequence[Tensor]) -> None:
    if not len(costs) == len(pred_group_ids) == len(gt_group_ids):
        raise ValueError(
            f'solve_grouped_assignment: got {len(costs)} cost matrices, '
            f'{len(pred_group_ids)} prediction group-id vectors and {len(gt_group_ids)} target '
            'group-id vectors; they must be one per sample')
    for b, (cost, gp, gg) in enumerate(zip(costs, pred_group_ids, gt_group_ids)):
        if tuple(cost.shape) != (gp.numel(), gg.numel()):
            raise ValueError(
                f'solve_grouped_assignment: sample {b}: cost matrix {tuple(cost.shape)} does not '
                f'match {gp.numel()} prediction and {gg.numel()} target group ids')


def _solve_bucket(blocks: np.ndarray, max_brute_force_size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Optimal pairs of groups of one shape.

    Args:
        blocks: ``[G, a, c]`` float64 costs of ``G`` groups of ``a`` predictions, ``c`` targets.

    Returns:
        tuple: two ``[G * min(a, c)]`` int64 arrays of indices into the flattened block rows
        (``g * a + r``) and block columns (``g * c + j``) of the matched pairs.
    """
    num, a, c = blocks.shape
    size = max(a, c)
    if size <= max_brute_force_size:
        square = np.zeros((num, size, size))
        square[:, :a, :c] = blocks
        rows = np.broadcast_to(np.arange(size), (num, size))
        cols = solve_square_groups(square)
        real = (rows < a) & (cols < c)
        groups = np.broadcast_to(np.arange(num)[:, None], (num, size))[real]
        return groups * a + rows[real], groups * c + cols[real]
    rows, cols = [], []
    for g, block in enumerate(blocks):
        r, j = linear_sum_assignment(block)
        rows.append(g * a + r)
        cols.append(g * c + j)
    return np.concatenate(rows), np.concatenate(cols)


def _cost_blocks(costs: Sequence[Tensor], group_pred: np.ndarray, group_gt: np.ndarray,
                 n_pred: np.ndarray, n_gt: np.ndarray
                 ) -> List[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The cost block of every (sample, group) pair with predictions and targets, by shape.

    Args:
        costs: per sample ``[n_pred_b, n_gt_b]``.
        group_pred, group_gt: ``[ΣP]`` / ``[ΣT]`` int64 group id of every prediction / target,
            samples one after the other.
        n_pred, n_gt: ``[B]`` int64 predictions / targets per sample.

    Returns:
        list: per group shape ``(a, c)``: ``rows [G, a]`` and ``cols [G, c]`` (global indices
        into the concatenated predictions / targets, input order inside a group) and
        ``blocks [G, a, c]`` float64 costs, gathered on the costs' device in one pass.
    """
    sample_pred = np.repeat(np.arange(len(costs)), n_pred)
    sample_gt = np.repeat(np.arange(len(costs)), n_gt)
    keys, index = _pair_ids(np.concatenate([sample_pred, sample_gt]),
                            np.concatenate([group_pred, group_gt]))
    order_p, start_p, count_p = _group_members(index[:len(group_pred)], len(keys))
    order_g, start_g, count_g = _group_members(index[len(group_pred):], len(keys))
    pred_offset = np.cumsum(n_pred) - n_pred
    gt_offset = np.cumsum(n_gt) - n_gt
    cost_offset = np.cumsum(n_pred * n_gt) - n_pred * n_gt
    width = int(count_g.max()) + 1
    shape_code = count_p * width + count_g
    buckets = []
    for code in np.unique(shape_code[(count_p > 0) & (count_g > 0)]).tolist():
        a, c = divmod(code, width)
        groups = np.flatnonzero(shape_code == code)
        rows = order_p[start_p[groups, None] + np.arange(a)]
        cols = order_g[start_g[groups, None] + np.arange(c)]
        b = keys[groups, 0]  # sample of each group
        entry = (cost_offset[b, None, None]
                 + (rows - pred_offset[b, None])[:, :, None] * n_gt[b, None, None]
                 + (cols - gt_offset[b, None])[:, None, :])
        buckets.append((rows, cols, entry))
    if not buckets:
        return []
    flat = torch.cat([c.reshape(-1) for c in costs]).detach()
    entries = torch.from_numpy(np.concatenate([e.reshape(-1) for _, _, e in buckets]))
    values = flat[entries.to(flat.device)].to('cpu', torch.float64).numpy()
    ends = np.cumsum([e.size for _, _, e in buckets])
    return [(rows, cols, values[end - entry.size:end].reshape(entry.shape))
            for (rows, cols, entry), end in zip(buckets, ends)]


def solve_grouped_assignment(
        costs: Sequence[Tensor], pred_group_ids: Sequence[Tensor],
        gt_group_ids: Sequence[Tensor],
        max_brute_force_size: int = 6) -> List[Tuple[Tensor, Tensor]]:
    """Optimal one-to-one matching restricted to equal group ids, for a batch of samples.

    Args:
        costs: per sample ``[n_pred_b, n_gt_b]`` cost matrices (any device, not differentiated).
        pred_group_ids: per sample ``[n_pred_b]`` long group id of each prediction.
        gt_group_ids: per sample ``[n_gt_b]`` long group id of each target.
        max_brute_force_size: groups up to this size (``max(n_pred, n_gt)``) are solved by the
            vectorised exact search, larger ones by scipy.

    Returns:
        list: per sample ``(pred_inds, gt_inds)``, long ``[m_b]`` each on the device of
        ``costs[0]``, sorted by ``pred_inds``; every group contributes ``min(n_pred, n_gt)``
        pairs with the minimum total cost.
    """
    _validate(costs, pred_group_ids, gt_group_ids)
    device = costs[0].device if len(costs) else torch.device('cpu')
    n_pred = np.array([gp.numel() for gp in pred_group_ids], dtype=np.int64)
    n_gt = np.array([gg.numel() for gg in gt_group_ids], dtype=np.int64)
    buckets = []
    if n_pred.sum() > 0 and n_gt.sum() > 0:
        buckets = _cost_blocks(costs, torch.cat(list(pred_group_ids)).cpu().long().numpy(),
                               torch.cat(list(gt_group_ids)).cpu().long().numpy(), n_pred, n_gt)
    matched_rows, matched_cols = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for rows, cols, blocks in buckets:
        block_rows, block_cols = _solve_bucket(blocks, max_brute_force_size)
        matched_rows.append(rows.reshape(-1)[block_rows])
        matched_cols.append(cols.reshape(-1)[block_cols])
    return _per_sample_pairs(np.concatenate(matched_rows), np.concatenate(matched_cols),
                             n_pred, n_gt, device)


def _per_sample_pairs(rows: np.ndarray, cols: np.ndarray, n_pred: np.ndarray, n_gt: np.ndarray,
                      device: torch.device) -> List[Tuple[Tensor, Tensor]]:
    """Split global ``(row, col)`` pairs into per-sample local indices sorted by row, moved to
    ``device`` in one transfer."""
    order = np.argsort(rows, kind='stable')
    rows, cols = rows[order], cols[order]
    pred_offset = np.cumsum(n_pred) - n_pred
    sample = np.searchsorted(pred_offset + n_pred, rows, side='right')
    local = np.stack([rows - pred_offset[sample], cols - (np.cumsum(n_gt) - n_gt)[sample]])
    pred_inds, gt_inds = torch.from_numpy(local).to(device)
    per_sample = np.bincount(sample, minlength=len(n_pred)).tolist()
    return list(zip(pred_inds.split(per_sample), gt_inds.split(per_sample)))
