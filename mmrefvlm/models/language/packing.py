"""Sequence packing for the teacher-forced LM pass: a padded batch → fewer, fuller rows.

Our addition. A batch mixes short answers (captions, questions) with long multi-round grounding
conversations, so a right-padded batch is about a third padding, and the LM's cost is linear
in the padded tokens. Packing places whole sequences end to end in rows as long as the batch's
longest one (first-fit decreasing), restarts the positions of every sequence, and gives the LM
a block-diagonal causal mask (4-D, in the inverted form HF's Llama takes as is), so each token
attends to its own sequence only: the states and the loss equal the padded pass's up to float
rounding. HF's ``DataCollatorWithFlattening`` packs the same way but keeps sequences apart only
under flash-attention kernels, which the CPU does not have.
"""
from dataclasses import dataclass
from typing import List, Sequence

import torch
from torch import Tensor

from mmrefvlm.tokenization import IGNORE_INDEX


def first_fit_decreasing(lengths: Sequence[int], capacity: int) -> List[List[int]]:
    """Rows of sequence indices, each row's lengths summing to at most ``capacity``: every
    sequence, longest first, goes into the first row with room for it."""
    rows: List[List[int]] = []
    room: List[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        for row, free in enumerate(room):
            if lengths[index] <= free:
                rows[row].append(index)
                room[row] -= lengths[index]
                break
        else:
            rows.append([index])
            room.append(capacity - lengths[index])
    return rows


@dataclass
class PackedBatch:
    """A packed view of a ``[B, L]`` batch.

    Attributes:
        source: ``[R, L]`` index of each packed slot into the flattened batch ``[B * L]``;
            ``B * L`` (one past the end) on empty slots.
        target: ``[B, L]`` index of each batch token into the flattened packed rows ``[R * L]``;
            ``R * L`` on the batch's padding.
        position_ids: ``[R, L]`` position of each slot within its sequence (0 on empty slots).
        segments: ``[R, L]`` which sequence of its row each slot holds, -1 on empty slots.
    """
    source: Tensor
    target: Tensor
    position_ids: Tensor
    segments: Tensor

    @classmethod
    def from_mask(cls, attention_mask: Tensor) -> 'PackedBatch':
        """Pack the tokens where ``attention_mask [B, L]`` is nonzero, in order."""
        batch, length = attention_mask.shape
        valid = attention_mask.bool().cpu()
        lengths = valid.sum(1).tolist()
        rows = first_fit_decreasing(lengths, length)
        source = torch.full((len(rows), length), batch * length, dtype=torch.long)
        target = torch.full((batch, length), len(rows) * length, dtype=torch.long)
        position_ids = torch.zeros((len(rows), length), dtype=torch.long)
        segments = torch.full((len(rows), length), -1, dtype=torch.long)
        for row, members in enumerate(rows):
            offset = 0
            for segment, b in enumerate(members):
                tokens = valid[b].nonzero()[:, 0]
                span = torch.arange(offset, offset + len(tokens))
                source[row, span] = b * length + tokens
                target[b, tokens] = row * length + span
                position_ids[row, span] = torch.arange(len(tokens))
                segments[row, span] = segment
                offset += len(tokens)
        device = attention_mask.device
        return cls(source.to(device), target.to(device), position_ids.to(device),
                   segments.to(device))

    @property
    def num_rows(self) -> int:
        return self.source.shape[0]

    @property
    def starts(self) -> Tensor:
        """``[R, L]`` True on the first token of each sequence."""
        return (self.position_ids == 0) & (self.segments >= 0)

    def pack(self, values: Tensor, fill) -> Tensor:
        """``[B, L, ...]`` → ``[R, L, ...]``, ``fill`` on empty slots."""
        flat = values.flatten(0, 1)
        flat = torch.cat([flat, flat.new_full((1, *flat.shape[1:]), fill)])
        return flat[self.source]

    def unpack(self, values: Tensor) -> Tensor:
        """``[R, L, ...]`` → ``[B, L, ...]``, zero on the batch's padding."""
        flat = values.flatten(0, 1)
        flat = torch.cat([flat, flat.new_zeros((1, *flat.shape[1:]))])
        return flat[self.target]

    def pack_labels(self, labels: Tensor) -> Tensor:
        """``[B, L]`` labels → ``[R, L]``; the first token of every sequence is ignored, so no
        sequence's last token is trained to predict the next sequence's first (the padded
        pass never uses a first label either: the LM loss shifts by one)."""
        return self.pack(labels, IGNORE_INDEX).masked_fill(self.starts, IGNORE_INDEX)

    def attention_mask(self, dtype: torch.dtype) -> Tensor:
        """``[R, 1, L, L]`` additive block-diagonal causal mask (0 where a token may attend, the
        dtype's minimum elsewhere; an empty slot attends to itself only)."""
        length = self.segments.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool,
                            device=self.segments.device).tril()
        same = self.segments[:, :, None] == self.segments[:, None, :]
        allowed = same & causal & (self.segments[:, :, None] >= 0)
        allowed |= torch.eye(length, dtype=torch.bool, device=self.segments.device)
        mask = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
        return mask.masked_fill(~allowed, torch.finfo(dtype).min)[:, None]
