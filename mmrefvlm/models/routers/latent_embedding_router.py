"""Latent Embedding Router (paper §4.3, Fig. 4): ``<REF>`` states → one query batch per unit.

The paper's own component. Triplets are read from the token ids with the TRP token parser, and
each triplet's ``<REF>`` states go to the head named by the triplet's **unit text** — the
teacher-forced answer in training, the generated one at inference (never the input task command).
A composite unit (``<Unit>box, keypoint</Unit>``) sends the same states to every named head.
"""
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import torch
from mmengine.logging import print_log
from torch import Tensor

from mmrefvlm.registry import MODELS
from mmrefvlm.trp import parse_ref_tokens


@dataclass
class RoutedQueries:
    """The queries of one unit for a batch.

    Attributes:
        queries: ``[B, Q, D]`` ``<REF>`` hidden states, zero on padding.
        mask: ``[B, Q]`` True on real queries.
        group_ids: ``[B, Q]`` index of the query's triplet within its sample, -1 on padding.
        ref_index: ``[B, Q]`` index of the query's ``<REF>`` among the sample's ``<REF>``s (its
            row in ``gt_instances``), -1 on padding.
        phrases: per sample, the phrase of each triplet (indexed by ``group_ids``).
    """
    queries: Tensor
    mask: Tensor
    group_ids: Tensor
    ref_index: Tensor
    phrases: List[List[str]]

    @property
    def num_queries(self) -> int:
        return int(self.mask.sum())


@MODELS.register_module()
class LatentEmbeddingRouter:
    """Group ``<REF>`` states by triplet and route them by unit.

    Args:
        units: the units that have a head; triplets of other units are skipped (logged once).
        phrase_pooling: add to each ``<REF>`` state the mean state of its triplet's phrase
            tokens (our addition, off in the paper-scale configs). A small LLM trained from
            scratch learns slowly to gather the phrase into the ``<REF>`` state; the pooled
            phrase gives the heads what the phrase says from the first step (measured in
            docs/internals.md §9.2).
    """

    def __init__(self, units: Sequence[str], phrase_pooling: bool = False) -> None:
        self.units = tuple(units)
        self.phrase_pooling = phrase_pooling
        self._warned: set = set()

    def route(self, input_ids: Tensor, hidden: Tensor, special_ids: Dict[str, int],
              decode: Callable[[Sequence[int]], str],
              valid: Optional[Tensor] = None) -> Dict[str, RoutedQueries]:
        """Route a batch.

        Args:
            input_ids: ``[B, L]`` token ids (teacher-forced sequence or generated tokens).
            hidden: ``[B, L, D]`` last-layer states, ``hidden[b, i]`` for input ``input_ids[b, i]``.
            special_ids: ``{token: id}`` of the TRP special tokens and ``'pad'``.
            decode: token ids → text (for phrase and unit text).
            valid: optional ``[B, L]`` bool; positions outside it are ignored (padding, prompt).

        Returns:
            ``{unit: RoutedQueries}`` for every unit of ``self.units`` (units with no query get
            ``Q == 0``).
        """
        batch = input_ids.shape[0]
        picked = {unit: [[] for _ in range(batch)] for unit in self.units}
        phrases: List[List[str]] = []
        for b in range(batch):
            # positions outside `valid` read as padding: no triplet can start or end there
            ids = input_ids[b] if valid is None else input_ids[b].masked_fill(
                ~valid[b], special_ids['pad'])
            ref_positions = (ids == special_ids['<REF>']).nonzero().flatten().tolist()
            ordinal = {pos: k for k, pos in enumerate(ref_positions)}
            triplets = parse_ref_tokens(ids.tolist(), special_ids, decode)
            phrases.append([t.phrase for t in triplets])
            for group, triplet in enumerate(triplets):
                for unit in triplet.units:
                    if unit not in picked:
                        self._warn_unit(unit)
                        continue
                    picked[unit][b] += [(pos, group, ordinal[pos], *triplet.phrase_span)
                                        for pos in triplet.ref_positions]
        return {unit: self._pad(hidden, rows, phrases) for unit, rows in picked.items()}

    def _pad(self, hidden: Tensor, rows: List[list], phrases: List[List[str]]) -> RoutedQueries:
        batch, width = hidden.shape[0], hidden.shape[-1]
        num = max([len(r) for r in rows] + [0])
        queries = hidden.new_zeros(batch, num, width)
        mask = torch.zeros(batch, num, dtype=torch.bool, device=hidden.device)
        group_ids = torch.full((batch, num), -1, dtype=torch.long, device=hidden.device)
        ref_index = torch.full_like(group_ids, -1)
        for b, sample_rows in enumerate(rows):
            if not sample_rows:
                continue
            pos, group, ordinal, start, end = (torch.tensor(x, device=hidden.device)
                                               for x in zip(*sample_rows))
            count = len(sample_rows)
            queries[b, :count] = hidden[b, pos]
            if self.phrase_pooling:
                for k, (first, last) in enumerate(zip(start.tolist(), end.tolist())):
                    if last > first:
                        queries[b, k] = queries[b, k] + hidden[b, first:last].mean(0)
            mask[b, :count] = True
            group_ids[b, :count] = group
            ref_index[b, :count] = ordinal
        return RoutedQueries(queries, mask, group_ids, ref_index, phrases)

    def _warn_unit(self, unit: str) -> None:
        if unit not in self._warned:
            self._warned.add(unit)
            print_log(f'LatentEmbeddingRouter: no head for unit {unit!r}; its <REF>s are '
                      f'skipped (heads: {", ".join(self.units)})', logger='current')
