"""Latent Embedding Router (paper §4.3, Fig. 4): ``<REF>`` states → one query batch per unit.

The paper's own component. Triplets are read from the token ids with the TRP token parser, and
each triplet's ``<REF>`` states go to the head named by the triplet's **unit text** — the
teacher-forced answer in training, the generated one at inference (never the input task command).
A composite unit (``<Unit>box, keypoint</Unit>``) sends the same states to every named head.
"""
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

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
class PhraseQueries(nn.Module):
    """Queries that start from their phrase (our addition, off in the paper): a learned mean
    embedding of the phrase's tokens plus, through a per-channel gate that starts at zero, the
    ``<REF>`` state with the mean state of the phrase's tokens added.

    A small LLM trained from scratch learns slowly to gather the phrase into the ``<REF>`` state;
    the heads start from clean phrase queries and take in the state as far as it helps (e.g. to
    tell apart two objects of one category named by a region prompt). docs/experiments.md.

    Args:
        vocab_size, embed_dims: size and width of the embedding table (the router fills them in
            from the LLM).
    """

    def __init__(self, vocab_size: int, embed_dims: int) -> None:
        super().__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, embed_dims, mode='mean')
        self.state_gate = nn.Parameter(torch.zeros(embed_dims))

    def forward(self, states: Tensor, hidden: Tensor, ids: Tensor,
                spans: List[Tuple[int, int]]) -> Tensor:
        """Queries of one sample.

        Args:
            states: ``[n, C]`` the ``<REF>`` states; hidden: ``[L, C]`` the sample's states;
            ids: ``[L]`` its token ids; spans: per query the ``[first, last)`` phrase tokens.

        Returns:
            Tensor: ``[n, C]``.
        """
        pooled = states + torch.stack([
            hidden[first:last].mean(0) if last > first else hidden.new_zeros(hidden.shape[-1])
            for first, last in spans])
        tokens = torch.cat([ids[first:last] for first, last in spans])
        lengths = torch.tensor([last - first for first, last in spans], device=ids.device)
        offsets = torch.cat([lengths.new_zeros(1), lengths.cumsum(0)[:-1]])
        return self.state_gate * pooled + self.embedding(tokens, offsets)


@MODELS.register_module()
class LatentEmbeddingRouter(nn.Module):
    """Group ``<REF>`` states by triplet and route them by unit.

    Args:
        units: the units that have a head; triplets of other units are skipped (logged once).
        vocab_size, embed_dims: the LLM's vocabulary and width (the detector fills them in),
            for ``phrase_queries``.
        phrase_queries: optional config of a module that turns each ``<REF>`` state into its
            query, e.g. :class:`PhraseQueries` (``None``: the ``<REF>`` state, the paper).
    """

    def __init__(self, units: Sequence[str], vocab_size: Optional[int] = None,
                 embed_dims: Optional[int] = None,
                 phrase_queries: Optional[dict] = None) -> None:
        super().__init__()
        self.units = tuple(units)
        self.phrase_queries = None
        if phrase_queries is not None:
            if not vocab_size or not embed_dims:
                raise ValueError('LatentEmbeddingRouter: phrase_queries needs vocab_size and '
                                 f'embed_dims, got {vocab_size} and {embed_dims}')
            self.phrase_queries = MODELS.build(dict(phrase_queries, vocab_size=vocab_size,
                                                    embed_dims=embed_dims))
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
        if num == 0:
            # no query: still in the graph of the LLM and the router ("fake tensors", paper
            # App. C.2), so that the unit's head can run on a dummy query at zero weight
            queries = hidden[:, :0] + sum(p.sum() for p in self.parameters()) * 0
        else:
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
            if self.phrase_queries is not None:
                states = self.phrase_queries(states, hidden[b], input_ids[b],
                                             list(zip(start.tolist(), end.tolist())))
            queries[b, :count] = states.to(queries.dtype)
            mask[b, :count] = True
            group_ids[b, :count] = group
            ref_index[b, :count] = ordinal
        return RoutedQueries(queries, mask, group_ids, ref_index, phrases)

    def _warn_unit(self, unit: str) -> None:
        if unit not in self._warned:
            self._warned.add(unit)
            print_log(f'LatentEmbeddingRouter: no head for unit {unit!r}; its <REF>s are '
                      f'skipped (heads: {", ".join(self.units)})', logger='current')
