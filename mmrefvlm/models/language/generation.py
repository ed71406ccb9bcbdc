"""Greedy, deterministic generation that keeps the ``<REF>`` hidden states.

HF's ``generate`` cannot return the last-layer state of the position whose *input* token is a
generated ``<REF>`` without recomputing the sequence; this loop can. Step ``t`` feeds the token
generated at step ``t - 1`` and records the last-layer hidden state of that input position — the
same convention as training (``hidden[b, i]`` where ``input_ids[b, i]`` is ``<REF>``). The KV cache
makes each step one token long; batches are left padded.
"""
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor
from transformers import PreTrainedModel


@dataclass
class GenerationOutput:
    """Result of :func:`greedy_generate`.

    Attributes:
        tokens: ``[B, T]`` generated ids (``pad_id`` after a sample's end).
        hidden: ``[B, T, D]`` last-layer hidden state of each generated token fed as input.
        lengths: ``[B]`` number of generated tokens per sample, ``eos`` excluded.
    """
    tokens: Tensor
    hidden: Tensor
    lengths: Tensor


@torch.no_grad()
def greedy_generate(lm: PreTrainedModel, inputs_embeds: Tensor, attention_mask: Tensor,
                    embed: Callable[[Tensor], Tensor], eos_id: int, pad_id: int,
                    max_new_tokens: int) -> GenerationOutput:
    """Greedy decoding from a left-padded prompt given as embeddings.

    Args:
        lm: HF causal LM.
        inputs_embeds: ``[B, L, D]`` prompt embeddings (image/region tokens already spliced in).
        attention_mask: ``[B, L]`` 1 on real tokens, 0 on left padding.
        embed: maps token ids ``[B, 1]`` to input embeddings ``[B, 1, D]``.
        eos_id: id that ends a sample.
        pad_id: id written after a sample has ended.
        max_new_tokens: generation budget per sample.
    """
    batch = inputs_embeds.shape[0]
    device = inputs_embeds.device
    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp_min(0)
    out = lm(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
             position_ids=position_ids, use_cache=True, output_hidden_states=True)
    cache, logits = out.past_key_values, out.logits[:, -1]
    next_position = position_ids[:, -1:] + 1
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    lengths = torch.zeros(batch, dtype=torch.long, device=device)
    tokens, hidden = [], []
    for _ in range(max_new_tokens):
        token = logits.argmax(-1)
        token = torch.where(finished, torch.full_like(token, pad_id), token)
        finished_now = finished | (token == eos_id)
        lengths += (~finished_now).long()
        attention_mask = torch.cat([attention_mask, (~finished)[:, None].long()], dim=1)
        out = lm(inputs_embeds=embed(token[:, None]), attention_mask=attention_mask,
                 position_ids=next_position, past_key_values=cache, use_cache=True,
                 output_hidden_states=True)
        tokens.append(token)
        hidden.append(out.hidden_states[-1][:, -1])
        cache, logits = out.past_key_values, out.logits[:, -1]
        next_position = next_position + 1
        finished = finished_now
        if bool(finished.all()):
            break
    if not tokens:
        empty = inputs_embeds.new_zeros(batch, 0, inputs_embeds.shape[-1])
        return GenerationOutput(torch.zeros(batch, 0, dtype=torch.long, device=device), empty,
                                lengths)
    return GenerationOutput(torch.stack(tokens, 1), torch.stack(hidden, 1), lengths)
