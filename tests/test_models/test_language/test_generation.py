"""Greedy generation with KV cache equals step-by-step recomputation, keeps <REF> states."""
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from mmrefvlm.models.language.generation import greedy_generate


def _tiny_lm() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=40, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                         max_position_embeddings=64)
    return LlamaForCausalLM(config).eval()


def _reference(lm, ids, steps):
    """No cache: recompute the whole sequence at every step."""
    tokens, hidden = [], []
    seq = ids.clone()
    for _ in range(steps):
        out = lm(input_ids=seq, output_hidden_states=True)
        nxt = out.logits[:, -1].argmax(-1)
        seq = torch.cat([seq, nxt[:, None]], 1)
        tokens.append(nxt)
    out = lm(input_ids=seq, output_hidden_states=True)
    hidden = out.hidden_states[-1][:, ids.shape[1]:]
    return torch.stack(tokens, 1), hidden


def test_matches_recomputation_and_left_padding():
    lm = _tiny_lm()
    embed = lm.get_input_embeddings()
    short = torch.tensor([[5, 6, 7]])
    long = torch.tensor([[8, 9, 10, 11, 12]])
    ref_short = _reference(lm, short, 6)
    ref_long = _reference(lm, long, 6)
    pad = 0
    ids = torch.tensor([[pad, pad, 5, 6, 7], [8, 9, 10, 11, 12]])
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    out = greedy_generate(lm, embed(ids), mask, embed, eos_id=-1, pad_id=pad, max_new_tokens=6)
    assert out.tokens.shape == (2, 6) and out.lengths.tolist() == [6, 6]
    assert torch.equal(out.tokens[0], ref_short[0][0])
    assert torch.equal(out.tokens[1], ref_long[0][0])
    torch.testing.assert_close(out.hidden[0], ref_short[1][0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out.hidden[1], ref_long[1][0], atol=1e-4, rtol=1e-4)


def test_stops_at_eos_and_pads_after():
    lm = _tiny_lm()
    embed = lm.get_input_embeddings()
    ids = torch.tensor([[5, 6, 7]])
    first = greedy_generate(lm, embed(ids), torch.ones(1, 3, dtype=torch.long), embed,
                            eos_id=-1, pad_id=0, max_new_tokens=3)
    eos = int(first.tokens[0, 1])
    out = greedy_generate(lm, embed(ids), torch.ones(1, 3, dtype=torch.long), embed,
                          eos_id=eos, pad_id=0, max_new_tokens=10)
    stop = (first.tokens[0] == eos).nonzero()[0].item()
    assert out.lengths.item() == stop
    assert out.tokens.shape[1] == stop + 1 and out.tokens[0, stop] == eos
