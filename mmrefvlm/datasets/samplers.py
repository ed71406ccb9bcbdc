"""Samplers: batches of records with similar text length (less padding in the LLM); a fixed
mixture of several datasets."""
import itertools
from typing import Iterator, Optional, Sequence

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
        dataset: the dataset; its ``conversation_lengths()`` (``[len]`` array) when it has
            one, else ``get_data_info(i)`` must return the record (``conversations``).
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
        if hasattr(dataset, 'conversation_lengths'):  # from an index: no record is read
            self.lengths: Sequence[int] = dataset.conversation_lengths()
        else:
            self.lengths = [
                conversation_length(dataset.get_data_info(i)) for i in range(len(dataset))
            ]

    def _infinite_indices(self) -> Iterator[int]:
        generator = torch.Generator()
        generator.manual_seed(self.seed)
        while True:
            yield from get_length_grouped_indices(self.lengths,
                                                  self.batch_size * self.world_size,
                                                  self.mega_batch_mult, generator)


@DATA_SAMPLERS.register_module()
class MixtureInfiniteSampler(InfiniteSampler):
    """An infinite stream over the sub-datasets of a ``ConcatDataset`` in fixed proportions:
    the per-stage task mixture of the paper (Table 15, e.g. stage 2: 26.22 % understanding,
    40.57 % referring, 14.01 % GCG, 2.90 % interactive, 16.30 % open-vocabulary).

    Every draw picks sub-dataset ``d`` with probability ``ratios[d] / sum(ratios)``, then the
    next index of ``d``'s own shuffled pass (reshuffled when it is used up), so a small
    sub-dataset repeats and a large one is sampled without repetition within a pass. The stream
    depends only on ``seed``; every rank computes it and keeps its own slice, as in MMEngine's
    ``InfiniteSampler``.

    Args:
        dataset: a ``mmengine.dataset.ConcatDataset``.
        ratios: one positive weight per sub-dataset (normalised here).
        shuffle: must stay True (a mixture is a random draw).
        seed: random seed (default: MMEngine's synced seed).
    """

    def __init__(self, dataset, ratios: Sequence[float], shuffle: bool = True,
                 seed: Optional[int] = None) -> None:
        if not shuffle:
            raise ValueError('MixtureInfiniteSampler: shuffle=False is not a mixture')
        datasets = getattr(dataset, 'datasets', None)
        if datasets is None:
            raise ValueError(f'MixtureInfiniteSampler: the dataset must be a ConcatDataset, '
                             f'got {type(dataset).__name__}')
        if len(ratios) != len(datasets) or any(r <= 0 for r in ratios):
            raise ValueError(f'MixtureInfiniteSampler: need one positive ratio per dataset '
                             f'({len(datasets)}), got {list(ratios)}')
        empty = [i for i, d in enumerate(datasets) if len(d) == 0]
        if empty:
            raise ValueError(f'MixtureInfiniteSampler: datasets {empty} are empty')
        super().__init__(dataset, shuffle=True, seed=seed)
        self.ratios = torch.tensor(ratios, dtype=torch.float64) / sum(ratios)
        self.sizes = [len(d) for d in datasets]
        self.offsets = [0] + list(itertools.accumulate(self.sizes))[:-1]

    def _infinite_indices(self) -> Iterator[int]:
        generator = torch.Generator()
        generator.manual_seed(self.seed)
        passes = [_shuffled_passes(size, generator) for size in self.sizes]
        while True:
            for d in torch.multinomial(self.ratios, 4096, replacement=True,
                                       generator=generator).tolist():
                yield self.offsets[d] + next(passes[d])


def _shuffled_passes(size: int, generator: torch.Generator) -> Iterator[int]:
    """Random permutations of ``range(size)``, one after another."""
    while True:
        yield from torch.randperm(size, generator=generator).tolist()
