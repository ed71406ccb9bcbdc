"""Sequence packing: rows, the round trip, and an LM pass equal to the padded one."""
import pytest
import torch

from mmrefvlm.models.language import build_causal_lm
from mmrefvlm.models.language.packing import PackedBatch, first_fit_decreasing


def test_first_fit_decreasing_fills_rows_without_overflow():
    lengths = [9, 2, 7, 3, 1, 5]
    rows = first_fit_decreasing(lengths, 10)
    assert sorted(i for row in rows for i in row) == list(range(6))
    assert all(sum(lengths[i] for i in row) <= 10 for row in rows)
    assert rows == [[0, 4], [2, 3], [5, 1]]


def _right_padded(lengths, width):
    return (torch.arange(width)[None] < torch.tensor(lengths)[:, None]).long()


def test_pack_and_unpack_round_trip():
    mask = _right_padded([5, 2, 3, 6], 6)
    packed = PackedBatch.from_mask(mask)
    assert packed.num_rows == 3  # [6], [5], [3, 2]
    values = torch.arange(24.).reshape(4, 6, 1) + 1
    rows = packed.pack(values, -1.)
    assert rows.shape == (3, 6, 1)
    assert int((rows >= 0).sum()) == int(mask.sum())
    restored = packed.unpack(rows)
    torch.testing.assert_close(restored[mask.bool()], values[mask.bool()])
    assert bool((restored[~mask.bool()] == 0).all())
    # positions restart at every sequence; the first token of each is a start
    assert packed.position_ids[2].tolist() == [0, 1, 2, 0, 1, 0]
    assert packed.starts[2].tolist() == [True, False, False, True, False, False]


def test_attention_mask_is_block_diagonal_and_causal():
    packed = PackedBatch.from_mask(_right_padded([3, 2], 6))
    allowed = (packed.attention_mask(torch.float32)[0, 0] == 0)
    expected = torch.zeros(6, 6, dtype=torch.bool)
    expected[:3, :3] = torch.ones(3, 3).tril().bool()
    expected[3:5, 3:5] = torch.ones(2, 2).tril().bool()
    expected[5, 5] = True  # an empty slot attends to itself only
    assert torch.equal(allowed, expected)


@pytest.fixture(scope='module')
def lm():
    torch.manual_seed(0)
    return build_causal_lm(dict(type='config', config=dict(
        model_type='llama', vocab_size=50, hidden_size=32, intermediate_size=64,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
        max_position_embeddings=64))).eval()


def test_packed_pass_equals_the_padded_one(lm):
    """States of every real token and the LM loss match the right-padded pass; changing one
    sequence leaves the others' states alone (no attention across sequences)."""
    torch.manual_seed(1)
    lengths = [12, 4, 7, 5]
    mask = _right_padded(lengths, 12)
    embeds = torch.randn(4, 12, 32)
    labels = torch.randint(0, 50, (4, 12)).masked_fill(~mask.bool(), -100)
    labels[:, :2] = -100
    padded = lm(inputs_embeds=embeds, attention_mask=mask, labels=labels,
                output_hidden_states=True)
    packed = PackedBatch.from_mask(mask)
    assert packed.num_rows < 4

    def run(inputs):
        out = lm(inputs_embeds=packed.pack(inputs, 0.),
                 attention_mask=packed.attention_mask(inputs.dtype),
                 position_ids=packed.position_ids, labels=packed.pack_labels(labels),
                 output_hidden_states=True)
        return packed.unpack(out.hidden_states[-1]), out.loss

    hidden, loss = run(embeds)
    real = mask.bool()
    torch.testing.assert_close(hidden[real], padded.hidden_states[-1][real],
                               rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(loss, padded.loss, rtol=1e-5, atol=1e-6)
    changed = embeds.clone()
    changed[1] += 1.0
    other = run(changed)[0]
    keep = real.clone()
    keep[1] = False
    torch.testing.assert_close(other[keep], hidden[keep])
    assert not torch.allclose(other[1][real[1]], hidden[1][real[1]])
