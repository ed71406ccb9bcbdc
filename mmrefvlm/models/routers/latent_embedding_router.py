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
from torch import Tensor, nn

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

    def select(self, rows: Tensor) -> 'RoutedQueries':
        """The queries of the samples ``rows`` (``[b]`` long indices into the batch)."""
        return RoutedQueries(self.queries[rows], self.mask[rows], self.group_ids[rows],
                             self.ref_index[rows], [self.phrases[i] for i in rows.tolist()])

    def extend(self, other: 'RoutedQueries', keep: Tensor) -> 'RoutedQueries':
        """These queries followed by ``other``'s (another unit's queries of the same batch)
        where ``keep [B, Q_other]`` is True; group ids and ``<REF>`` indices are per sample,
        so they stay valid."""
        return RoutedQueries(torch.cat([self.queries, other.queries.to(self.queries.dtype)], 1),
                             torch.cat([self.mask, other.mask & keep], 1),
                             torch.cat([self.group_ids, other.group_ids], 1),
                             torch.cat([self.ref_index, other.ref_index], 1), self.phrases)


@MODELS.register_module()
class LatentEmbeddingRouter(nn.Module):
    """Group ``<REF>`` states by triplet and route them by unit.

    Args:
        units: the units that have a head; triplets of other units are skipped (logged once).
        phrase_pooling: add to each ``<REF>`` state the mean state of its triplet's phrase
            tokens (our addition, off in the paper-scale configs). A small LLM trained from
            scratch learns slowly to gather the phrase into the ``<REF>`` state; the pooled
            phrase gives the heads what the phrase says from the first step (measured in
            docs/internals.md §9.2).
        phrase_embedding: our addition, off in the paper-scale configs. Each query becomes a
            learned embedding of its phrase's tokens (mean over a table of ``vocab_size`` rows)
            plus the ``<REF>`` state (pooled as above) through a per-channel gate that starts
            at zero: the heads start from clean phrase queries and take in the state as far as
            it helps (e.g. to tell apart two objects of one category named by a region
            prompt). Measured in docs/internals.md §9.3.
        vocab_size, embed_dims: size and width of that table (the detector fills them in from
            the LLM).
    """

    def __init__(self, units: Sequence[str], phrase_pooling: bool = False,
                 phrase_embedding: bool = False, vocab_size: Optional[int] = None,
                 embed_dims: Optional[int] = None) -> None:
        super().__init__()
        self.units = tuple(units)
        self.phrase_pooling = phrase_pooling
        self.phrase_embedding = None
        if phrase_embedding:
            if not vocab_size or not embed_dims:
                raise ValueError('LatentEmbeddingRouter: phrase_embedding needs vocab_size and '
                                 f'embed_dims, got {vocab_size} and {embed_dims}')
            self.phrase_embedding = nn.EmbeddingBag(vocab_size, embed_dims, mode='mean')
            self.state_gate = nn.Parameter(torch.zeros(embed_dims))
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
        return {unit: self._pad(input_ids, hidden, rows, phrases)
                for unit, rows in picked.items()}

    def _pad(self, input_ids: Tensor, hidden: Tensor, rows: List[list],
             phrases: List[List[str]]) -> RoutedQueries:
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
            states = hidden[b, pos]
            spans = list(zip(start.tolist(), end.tolist()))
            if self.phrase_pooling:
                states = states + torch.stack([
                    hidden[b, first:last].mean(0) if last > first else hidden.new_zeros(width)
                    for first, last in spans])
            if self.phrase_embedding is not None:
                states = self.state_gate * states + self._embed_phrases(input_ids[b], spans)
            queries[b, :count] = states.to(queries.dtype)
            mask[b, :count] = True
            group_ids[b, :count] = group
            ref_index[b, :count] = ordinal
        return RoutedQueries(queries, mask, group_ids, ref_index, phrases)

    def _embed_phrases(self, ids: Tensor, spans: List[tuple]) -> Tensor:
        """``[n, C]`` mean embedding of each span's token ids (zero for an empty span)."""
        tokens = torch.cat([ids[first:last] for first, last in spans])
        lengths = torch.tensor([last - first for first, last in spans], device=ids.device)
        offsets = torch.cat([lengths.new_zeros(1), lengths.cumsum(0)[:-1]])
        return self.phrase_embedding(tokens, offsets)

    def _warn_unit(self, unit: str) -> None:
        if unit not in self._warned:
            self._warned.add(unit)
            print_log(f'LatentEmbeddingRouter: no head for unit {unit!r}; its <REF>s are '
                      f'skipped (heads: {", ".join(self.units)})', logger='current')
