"""Samplers: batches of records with similar text length (less padding in the LLM)."""
from typing import Iterator, List, Optional

import torch
from mmengine.dataset import InfiniteSampler
from torch.utils.data import Dataset
from transformers.trainer_pt_utils import get_length_grouped_indices

from mmrefvlm.registry import DATA_SAMPLERS


def conversation_length(data_info: dict) -> int:
    """Characters in a record's conversation turns: a cheap proxy of its token count (only the
    order matters), read before any tokenizer runs."""
    return sum(len(turn.get('value') or '') for turn in data_info.get('conversations') or ())


@DATA_SAMPLERS.register_module()
class LengthGroupedInfiniteSampler(InfiniteSampler):
    """MMEngine's ``InfiniteSampler`` whose shuffled order groups records of similar length.

    Every pass over the dataset is transformers' ``get_length_grouped_indices`` (LLaVA's
    ``group_by_length``): a random permutation cut into mega-batches of
    ``mega_batch_mult * batch_size * world_size`` records, each sorted by
    :func:`conversation_length`, so the ``batch_size * world_size`` consecutive records of a
    global batch have similar lengths and the LLM pads less. A small ``mega_batch_mult`` keeps
    the task mix of a batch close to random (4: a batch is drawn from 4 batches' worth of
    records). The order depends only on ``seed``: every rank computes the same stream and keeps
    its own slice, as in ``InfiniteSampler``.

    Args:
        dataset: the dataset; ``get_data_info(i)`` must return the record (``conversations``).
        batch_size: per-GPU batch size of the dataloader.
        mega_batch_mult: global batches per sorted mega-batch.
        shuffle: must stay True (an unshuffled order has nothing to group).
        seed: random seed (default: MMEngine's synced seed).
    """

    def __init__(self,
                 dataset: Dataset,
                 batch_size: int,
                 mega_batch_mult: int = 4,
                 shuffle: bool = True,
                 seed: Optional[int] = None) -> None:
        if not shuffle:
            raise ValueError('LengthGroupedInfiniteSampler: shuffle=False leaves nothing to '
                             'group; use InfiniteSampler instead')
        if batch_size < 1 or mega_batch_mult < 1:
            raise ValueError(f'LengthGroupedInfiniteSampler: batch_size={batch_size} and '
                             f'mega_batch_mult={mega_batch_mult} must be >= 1')
        super().__init__(dataset, shuffle=True, seed=seed)
        self.batch_size = batch_size
        self.mega_batch_mult = mega_batch_mult
        self.lengths: List[int] = [
            conversation_length(dataset.get_data_info(i)) for i in range(len(dataset))
        ]

    def _infinite_indices(self) -> Iterator[int]:
        generator = torch.Generator()
        generator.manual_seed(self.seed)
        while True:
            yield from get_length_grouped_indices(self.lengths,
                                                  self.batch_size * self.world_size,
                                                  self.mega_batch_mult, generator)
