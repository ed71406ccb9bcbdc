"""Infinite samplers whose position is saved and restored (resume without replaying the data
loader): plain shuffling, batches of records with similar text length (less padding in the LLM),
a fixed mixture of task families or datasets."""
import itertools
from typing import Dict, Iterator, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.dataset import InfiniteSampler
from torch.utils.data import Dataset
from transformers.trainer_pt_utils import get_length_grouped_indices

from mmrefvlm.registry import DATA_SAMPLERS
from .tasks import TASKS


def conversation_length(data_info: dict) -> int:
    """Characters in a record's conversation turns: a cheap proxy of its token count (only the
    order matters), read before any tokenizer runs."""
    return sum(len(turn.get('value') or '') for turn in data_info.get('conversations') or ())


@DATA_SAMPLERS.register_module()
class ResumableInfiniteSampler(InfiniteSampler):
    """MMEngine's ``InfiniteSampler`` (the same stream for the same seed) with a position.

    ``consumed`` counts the records of the global stream (all ranks) that training has used;
    the train loop advances it by one global batch per iteration, saves :meth:`state_dict` in
    the checkpoint and restores it with :meth:`load_state_dict` on resume. Every new iterator
    starts at ``consumed``, so resuming at iteration k skips k batches of *indices* (integers,
    no record read) instead of loading k batches through the workers as MMEngine's loop does.

    Args:
        dataset, shuffle, seed: as in ``mmengine.dataset.InfiniteSampler``.
    """

    def __init__(self, dataset: Dataset, shuffle: bool = True, seed: Optional[int] = None) -> None:
        super().__init__(dataset, shuffle=shuffle, seed=seed)
        self.consumed = 0

    def __iter__(self) -> Iterator[int]:
        yield from itertools.islice(self._infinite_indices(), self.consumed + self.rank, None,
                                    self.world_size)

    def advance(self, count: int) -> None:
        """Mark ``count`` more records of the global stream as used."""
        self.consumed += count

    def state_dict(self) -> dict:
        """``{'seed', 'consumed'}``: what a resumed run needs to continue the stream."""
        return dict(seed=self.seed, consumed=self.consumed)

    def load_state_dict(self, state: dict) -> None:
        """Continue the stream of ``state`` (its seed, whatever this run's) at its position."""
        self.seed = state['seed']
        self.consumed = int(state['consumed'])


@DATA_SAMPLERS.register_module()
class LengthGroupedInfiniteSampler(ResumableInfiniteSampler):
    """An infinite sampler whose shuffled order groups records of similar length.

    Every pass over the dataset is transformers' ``get_length_grouped_indices`` (LLaVA's
    ``group_by_length``): a random permutation cut into mega-batches of
    ``mega_batch_mult * batch_size * world_size`` records, each sorted by
    :func:`conversation_length`, so the ``batch_size * world_size`` consecutive records of a
    global batch have similar lengths and the LLM pads less. A small ``mega_batch_mult`` keeps
    the task mix of a batch close to random (4: a batch is drawn from 4 batches' worth of
    records). The order depends only on ``seed``: every rank computes the same stream and keeps
    its own slice, as in ``InfiniteSampler``; resumable as :class:`ResumableInfiniteSampler`.

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
class MixtureInfiniteSampler(ResumableInfiniteSampler):
    """An infinite stream over groups of records in fixed proportions: the per-stage task
    mixture of the paper (Table 15, e.g. stage 2: 26.22 % understanding, 40.57 % referring,
    14.01 % GCG, 2.90 % interactive, 16.30 % open-vocabulary).

    The groups are the task families of the records (``ratios`` a dict ``family -> weight``,
    families as in :data:`.tasks.TASKS`; records of a family not named are never drawn), or
    the sub-datasets of a ``ConcatDataset`` (``ratios`` a list, one weight per sub-dataset).
    Every draw picks group ``g`` with probability ``ratios[g] / sum(ratios)``, then the next
    record of ``g``'s own shuffled pass (reshuffled when it is used up), so a small group
    repeats and a large one is sampled without repetition within a pass. The stream depends
    only on ``seed``; every rank computes it and keeps its own slice, as in MMEngine's
    ``InfiniteSampler``; resumable as :class:`ResumableInfiniteSampler`.

    Args:
        dataset: a dataset of VT-Instruct records (its ``samples_of_tasks(tasks)`` when it has
            one, else ``get_data_info(i)['task']``), or a ``mmengine.dataset.ConcatDataset``.
        ratios: ``family -> weight``, or one weight per sub-dataset (normalised here).
        shuffle: must stay True (a mixture is a random draw).
        seed: random seed (default: MMEngine's synced seed).
    """

    def __init__(self, dataset, ratios: Union[Dict[str, float], Sequence[float]],
                 shuffle: bool = True, seed: Optional[int] = None) -> None:
        if not shuffle:
            raise ValueError('MixtureInfiniteSampler: shuffle=False is not a mixture')
        if any(r <= 0 for r in (ratios.values() if isinstance(ratios, dict) else ratios)):
            raise ValueError(f'MixtureInfiniteSampler: ratios must be positive, got {ratios}')
        groups = (_family_groups(dataset, list(ratios)) if isinstance(ratios, dict) else
                  _sub_dataset_groups(dataset, len(ratios)))
        super().__init__(dataset, shuffle=True, seed=seed)
        weights = list(ratios.values()) if isinstance(ratios, dict) else list(ratios)
        self.ratios = torch.tensor(weights, dtype=torch.float64) / sum(weights)
        self.groups = groups

    def _infinite_indices(self) -> Iterator[int]:
        generator = torch.Generator()
        generator.manual_seed(self.seed)
        passes = [_shuffled_passes(len(group), generator) for group in self.groups]
        while True:
            for g in torch.multinomial(self.ratios, 4096, replacement=True,
                                       generator=generator).tolist():
                yield int(self.groups[g][next(passes[g])])


Group = Union[range, np.ndarray]  # dataset indices of one group's records


def _sub_dataset_groups(dataset, num_ratios: int) -> List[Group]:
    """The index range of each sub-dataset of a ``ConcatDataset``."""
    datasets = getattr(dataset, 'datasets', None)
    if datasets is None:
        raise ValueError(f'MixtureInfiniteSampler: a list of ratios needs a ConcatDataset, got '
                         f'{type(dataset).__name__}; name task families instead '
                         '(ratios=dict(visual_understanding=..., ...))')
    if num_ratios != len(datasets):
        raise ValueError(f'MixtureInfiniteSampler: need one ratio per dataset '
                         f'({len(datasets)}), got {num_ratios}')
    empty = [i for i, d in enumerate(datasets) if len(d) == 0]
    if empty:
        raise ValueError(f'MixtureInfiniteSampler: datasets {empty} are empty')
    offsets = [0] + list(itertools.accumulate(len(d) for d in datasets))
    return [range(start, stop) for start, stop in zip(offsets[:-1], offsets[1:])]


def _family_groups(dataset, families: Sequence[str]) -> List[Group]:
    """The indices of the records of each task family, from the dataset's index when it has
    one (no record is read)."""
    known = sorted({spec.family for spec in TASKS.values()})
    unknown = [family for family in families if family not in known]
    if unknown:
        raise ValueError(f'MixtureInfiniteSampler: unknown task families {unknown}; known: '
                         f'{", ".join(known)}')
    tasks = {family: [name for name, spec in TASKS.items() if spec.family == family]
             for family in families}
    if hasattr(dataset, 'samples_of_tasks'):
        groups = [dataset.samples_of_tasks(tasks[family]) for family in families]
    else:
        sample_tasks = [dataset.get_data_info(i)['task'] for i in range(len(dataset))]
        groups = [np.flatnonzero(np.isin(sample_tasks, tasks[family])) for family in families]
    empty = [family for family, group in zip(families, groups) if len(group) == 0]
    if empty:
        raise ValueError(f'MixtureInfiniteSampler: the dataset has no records of the task '
                         f'families {empty} (tasks {[t for f in empty for t in tasks[f]]})')
    return groups


def _shuffled_passes(size: int, generator: torch.Generator) -> Iterator[int]:
    """Random permutations of ``range(size)``, one after another."""
    while True:
        yield from torch.randperm(size, generator=generator).tolist()
