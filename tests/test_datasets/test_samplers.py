import itertools

import numpy as np
import pytest
from mmengine.dataset import InfiniteSampler

import mmrefvlm.datasets.samplers as samplers
from mmrefvlm.datasets import (LengthGroupedInfiniteSampler, MixtureInfiniteSampler,
                              conversation_length)


class _Records:
    """A dataset of ``len(lengths)`` records whose conversation has ``lengths[i]`` characters."""

    def __init__(self, lengths):
        self.lengths = list(lengths)

    def __len__(self):
        return len(self.lengths)

    def get_data_info(self, index):
        half = self.lengths[index] // 2
        return dict(conversations=[dict(value='h' * half),
                                   dict(value='g' * (self.lengths[index] - half))])


def _take(sampler, count):
    return list(itertools.islice(iter(sampler), count))


def _mean_batch_max(indices, lengths, batch_size):
    return float(np.mean([max(lengths[i] for i in indices[s:s + batch_size])
                          for s in range(0, len(indices), batch_size)]))


def test_conversation_length_counts_every_turn():
    assert conversation_length(dict(conversations=[dict(value='ab'), dict(value='cde')])) == 5
    assert conversation_length(dict(conversations=[dict(value=None)])) == 0
    assert conversation_length({}) == 0


def test_each_pass_is_a_permutation_with_sorted_mega_batches():
    lengths = np.random.default_rng(0).integers(10, 300, 96).tolist()
    sampler = LengthGroupedInfiniteSampler(_Records(lengths), batch_size=4, mega_batch_mult=3,
                                           seed=1)
    stream = _take(sampler, 192)
    first, second = stream[:96], stream[96:]
    assert sorted(first) == list(range(96)) and sorted(second) == list(range(96))
    assert first != second  # a new permutation every pass
    # inside each mega-batch (12 records) lengths descend, except the record swapped to the
    # front of the pass (the longest of all, so an out-of-memory shows at once)
    assert lengths[first[0]] == max(lengths)
    for start in range(0, 96, 12):
        chunk = [lengths[i] for i in first[start:start + 12]][1:]
        assert chunk == sorted(chunk, reverse=True)


def test_batches_pad_less_than_plain_shuffling():
    lengths = np.random.default_rng(0).integers(60, 300, 400).tolist()
    grouped = _take(LengthGroupedInfiniteSampler(_Records(lengths), batch_size=8, seed=0), 400)
    plain = _take(InfiniteSampler(_Records(lengths), seed=0), 400)
    assert _mean_batch_max(grouped, lengths, 8) < 0.85 * _mean_batch_max(plain, lengths, 8)


def test_same_seed_same_order_and_ranks_share_one_stream(monkeypatch):
    lengths = np.random.default_rng(0).integers(10, 300, 64).tolist()
    dataset = _Records(lengths)
    one = _take(LengthGroupedInfiniteSampler(dataset, batch_size=4, seed=3), 64)
    assert one == _take(LengthGroupedInfiniteSampler(dataset, batch_size=4, seed=3), 64)
    assert one != _take(LengthGroupedInfiniteSampler(dataset, batch_size=4, seed=4), 64)
    streams = []
    for rank in (0, 1):
        monkeypatch.setattr('mmengine.dataset.sampler.get_dist_info', lambda r=rank: (r, 2))
        streams.append(_take(LengthGroupedInfiniteSampler(dataset, batch_size=4, seed=3), 32))
    # the two ranks interleave the stream grouped for the global batch (2 x 4 records)
    monkeypatch.setattr('mmengine.dataset.sampler.get_dist_info', lambda: (0, 1))
    world = _take(LengthGroupedInfiniteSampler(dataset, batch_size=8, seed=3), 64)
    assert streams[0] == world[0::2] and streams[1] == world[1::2]


@pytest.mark.parametrize('kwargs', [dict(shuffle=False), dict(batch_size=0),
                                    dict(mega_batch_mult=0)])
def test_bad_arguments_are_refused(kwargs):
    args = dict(dataset=_Records([5, 6]), batch_size=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match='LengthGroupedInfiniteSampler'):
        LengthGroupedInfiniteSampler(**args)


def test_registered_for_configs():
    from mmrefvlm.registry import DATA_SAMPLERS
    sampler_cls = DATA_SAMPLERS.get('LengthGroupedInfiniteSampler')
    assert sampler_cls is samplers.LengthGroupedInfiniteSampler


class _Concat:
    """What ``MixtureInfiniteSampler`` reads of a ``ConcatDataset``: its sub-datasets."""

    def __init__(self, sizes):
        self.datasets = [range(size) for size in sizes]

    def __len__(self):
        return sum(len(d) for d in self.datasets)


# paper Table 15, stage 2: understanding, referring, GCG, interactive, open-vocabulary
STAGE2_RATIOS = [0.2622, 0.4057, 0.1401, 0.0290, 0.1630]


def test_mixture_follows_the_ratios_over_a_long_sample_of_batches():
    sizes = [50, 7, 300, 3, 1000]  # sub-dataset sizes unrelated to the ratios
    sampler = MixtureInfiniteSampler(_Concat(sizes), ratios=STAGE2_RATIOS, seed=0)
    indices = np.array(_take(sampler, 16 * 4000))  # 4000 batches of 16
    source = np.searchsorted(np.cumsum(sizes), indices, side='right')
    shares = np.bincount(source, minlength=len(sizes)) / len(indices)
    np.testing.assert_allclose(shares, STAGE2_RATIOS, atol=0.006)
    # within a sub-dataset every record comes once per pass: the 3-record set cycles through
    # permutations of its records
    small = indices[source == 3] - sum(sizes[:3])
    for start in range(0, len(small) - 3, 3):
        assert sorted(small[start:start + 3]) == [0, 1, 2]


def test_mixture_ranks_share_one_stream(monkeypatch):
    dataset = _Concat([10, 20])
    world = _take(MixtureInfiniteSampler(dataset, ratios=[1, 3], seed=5), 40)
    for rank in (0, 1):
        monkeypatch.setattr('mmengine.dataset.sampler.get_dist_info', lambda r=rank: (r, 2))
        assert _take(MixtureInfiniteSampler(dataset, ratios=[1, 3], seed=5), 20) == \
            world[rank::2]


@pytest.mark.parametrize('ratios, match', [([1.0], 'one positive ratio per dataset'),
                                           ([1.0, 0.0], 'one positive ratio per dataset')])
def test_mixture_refuses_bad_ratios(ratios, match):
    with pytest.raises(ValueError, match=match):
        MixtureInfiniteSampler(_Concat([2, 3]), ratios=ratios)
    with pytest.raises(ValueError, match='ConcatDataset'):
        MixtureInfiniteSampler(range(3), ratios=[1.0])


def test_lengths_come_from_the_dataset_index_when_it_has_one():
    lengths = np.random.default_rng(0).integers(10, 300, 64)

    class _Indexed(_Records):

        def conversation_lengths(self):
            return lengths

        def get_data_info(self, index):
            raise AssertionError('no record is read when the index has the lengths')

    from_index = _take(LengthGroupedInfiniteSampler(_Indexed(lengths), batch_size=4, seed=2), 64)
    assert from_index == _take(LengthGroupedInfiniteSampler(_Records(lengths), batch_size=4,
                                                            seed=2), 64)
