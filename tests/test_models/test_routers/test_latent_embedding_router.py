"""The router groups <REF> states by triplet and routes them by the unit text."""
import pytest
import torch

from mmrefvlm.models.routers import LatentEmbeddingRouter
from mmrefvlm.trp import SPECIAL_TOKENS

VOCAB = list(SPECIAL_TOKENS) + ['(', ')', '[0]', '[1]', '[2]', 'dog', 'cat', 'box', 'mask',
                                'keypoint', 'depth', ',', ' ', 'a', '.', '<pad>']
IDS = {tok: i for i, tok in enumerate(VOCAB)}
SPECIAL = {tok: IDS[tok] for tok in SPECIAL_TOKENS}
SPECIAL['pad'] = IDS['<pad>']


def encode(pieces):
    return [IDS[p] for p in pieces]


def decode(ids):
    return ''.join(VOCAB[i] for i in ids)


def triplet(phrase, unit, n):
    units = [] if unit is None else unit
    refs = []
    for k in range(n):
        refs += [f'[{k}]', '<REF>']
    return ['<Phrase>', phrase, '</Phrase>', '(', '<Unit>', *units, '</Unit>', *refs, ')']


def test_groups_and_routes_by_unit_text():
    seq0 = ['a', ' '] + triplet('dog', ['box'], 2) + [' '] + triplet('cat', ['mask'], 1)
    seq1 = triplet('cat', ['box', ',', ' ', 'mask'], 1) + ['.']
    width = max(len(seq0), len(seq1))
    ids = torch.full((2, width), IDS['.'])
    ids[0, :len(seq0)] = torch.tensor(encode(seq0))
    ids[1, :len(seq1)] = torch.tensor(encode(seq1))
    hidden = torch.arange(2 * width, dtype=torch.float32).reshape(2, width, 1).repeat(1, 1, 3)
    router = LatentEmbeddingRouter(units=('box', 'mask', 'keypoint'))
    routed = router.route(ids, hidden, SPECIAL, decode)

    ref_pos0 = [i for i, t in enumerate(seq0) if t == '<REF>']
    ref_pos1 = [i for i, t in enumerate(seq1) if t == '<REF>']
    box = routed['box']
    assert box.mask.tolist() == [[True, True], [True, False]]
    assert box.group_ids.tolist() == [[0, 0], [0, -1]]
    assert box.ref_index.tolist() == [[0, 1], [0, -1]]
    assert box.queries[0, :, 0].tolist() == [float(p) for p in ref_pos0[:2]]
    assert box.queries[1, 0, 0].item() == float(width + ref_pos1[0])
    assert torch.all(box.queries[1, 1] == 0)
    mask = routed['mask']
    # sample 0: the cat triplet (group 1, third <REF>); sample 1: the composite unit
    assert mask.mask.tolist() == [[True], [True]]
    assert mask.group_ids.tolist() == [[1], [0]]
    assert mask.ref_index.tolist() == [[2], [0]]
    assert routed['keypoint'].queries.shape == (2, 0, 3)
    assert box.phrases == [['dog', 'cat'], ['cat']]


def test_valid_mask_excludes_positions_and_unknown_units_are_skipped():
    seq = triplet('dog', ['depth'], 1) + triplet('cat', ['box'], 1)
    ids = torch.tensor([encode(seq)])
    hidden = torch.randn(1, len(seq), 4)
    router = LatentEmbeddingRouter(units=('box', ))
    routed = router.route(ids, hidden, SPECIAL, decode)
    assert routed['box'].num_queries == 1 and routed['box'].group_ids.tolist() == [[1]]
    valid = torch.zeros(1, len(seq), dtype=torch.bool)
    routed = router.route(ids, hidden, SPECIAL, decode, valid=valid)
    assert routed['box'].num_queries == 0


def test_gradients_reach_hidden_states():
    seq = triplet('dog', ['box'], 2)
    ids = torch.tensor([encode(seq)])
    hidden = torch.randn(1, len(seq), 4, requires_grad=True)
    routed = LatentEmbeddingRouter(units=('box', )).route(ids, hidden, SPECIAL, decode)
    routed['box'].queries.sum().backward()
    touched = (hidden.grad.abs().sum(-1) > 0)[0].nonzero().flatten().tolist()
    assert touched == [i for i, t in enumerate(seq) if t == '<REF>']


def test_phrase_queries_start_from_the_phrase_and_gate_the_pooled_state():
    """PhraseQueries: query = mean embedding of the phrase tokens + gate * (state + mean state
    of the phrase tokens). The gate starts at zero (the queries are the phrase embeddings alone:
    equal phrases, equal queries), yet it is learned from the state, and once open the state
    reaches the query. Without the block, a query is its <REF> state (the paper)."""
    seq = triplet('dog', ['box'], 2) + triplet('cat', ['box'], 1) + triplet('dog', ['box'], 1)
    ids = torch.tensor([encode(seq)])
    hidden = torch.randn(1, len(seq), 4, requires_grad=True)
    refs = [i for i, t in enumerate(seq) if t == '<REF>']
    plain = LatentEmbeddingRouter(units=('box', )).route(ids, hidden, SPECIAL, decode)['box']
    torch.testing.assert_close(plain.queries[0], hidden[0, refs])
    router = LatentEmbeddingRouter(units=('box', ), vocab_size=len(VOCAB), embed_dims=4,
                                   phrase_queries=dict(type='PhraseQueries'))
    routed = router.route(ids, hidden, SPECIAL, decode)['box']
    table = router.phrase_queries.embedding.weight
    expected = table[[IDS['dog'], IDS['dog'], IDS['cat'], IDS['dog']]]
    torch.testing.assert_close(routed.queries[0], expected)
    routed.queries.pow(2).sum().backward()
    assert router.phrase_queries.state_gate.grad.abs().sum() > 0
    assert table.grad[IDS['dog']].abs().sum() > 0 and table.grad[IDS['a']].abs().sum() == 0
    with torch.no_grad():
        router.phrase_queries.state_gate.fill_(0.5)
    opened = router.route(ids, hidden, SPECIAL, decode)['box']
    phrases = [i for i, t in enumerate(seq) if t in ('dog', 'cat')]
    pooled = hidden[0, refs] + hidden[0, [phrases[0], phrases[0], phrases[1], phrases[2]]]
    torch.testing.assert_close(opened.queries[0], expected + 0.5 * pooled)


def test_phrase_queries_need_the_table_size():
    with pytest.raises(ValueError, match='vocab_size and embed_dims'):
        LatentEmbeddingRouter(units=('box', ), phrase_queries=dict(type='PhraseQueries'))


def test_a_unit_without_queries_stays_in_the_graph():
    """Paper App. C.2 ("fake tensors"): an empty unit's queries still reach the LLM states."""
    seq = triplet('dog', ['box'], 1)
    hidden = torch.randn(1, len(seq), 4, requires_grad=True)
    routed = LatentEmbeddingRouter(units=('box', 'mask')).route(
        torch.tensor([encode(seq)]), hidden, SPECIAL, decode)
    assert routed['mask'].queries.shape == (1, 0, 4) and routed['mask'].queries.requires_grad
