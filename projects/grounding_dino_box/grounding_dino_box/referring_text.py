"""The text Grounding DINO reads in REF-VLM: per sample, the tokens of its phrases (Grounding
DINO's BERT, when the head has one) followed by one token per ``<REF>`` query, with the masks
and positions of Grounding DINO's sub-sentence text and each query's positive tokens; and the
router's phrases and groups handed to the head through the samples' meta."""
from typing import Dict, List, Optional, Sequence

import torch
from mmdet.structures import DetDataSample
from torch import Tensor

from mmrefvlm.models.routers import RoutedQueries


def phrase_captions(batch_phrases: Sequence[Sequence[str]]) -> tuple:
    """Grounding DINO's caption of each sample's phrases (``"red car. the dog. "``) and the
    character span of each phrase in it (``None`` for an empty phrase).

    Returns:
        tuple: captions ``list[str]`` and per sample a list of ``(begin, end)`` or ``None``.
    """
    captions, spans = [], []
    for phrases in batch_phrases:
        caption, sample_spans = '', []
        for phrase in phrases:
            phrase = phrase.strip()
            sample_spans.append((len(caption), len(caption) + len(phrase)) if phrase else None)
            caption += phrase + '. '
        captions.append(caption)
        spans.append(sample_spans)
    return captions, spans


def span_tokens(tokenized, batch_spans: Sequence[Sequence], num_tokens: int) -> List[Tensor]:
    """Per sample ``[G, T]`` bool: the tokens of each phrase (a truncated phrase keeps the tokens
    that were kept), from a fast tokenizer's ``char_to_token``."""
    result = []
    for b, spans in enumerate(batch_spans):
        tokens = torch.zeros(len(spans), num_tokens, dtype=torch.bool)
        for g, span in enumerate(spans):
            if span is None:
                continue
            indices = {tokenized.char_to_token(b, c) for c in range(*span)} - {None}
            tokens[g, sorted(indices)] = True
        result.append(tokens)
    return result


def referring_text(ref_tokens: Tensor, query_mask: Tensor, query_groups: Tensor,
                   phrase: Optional[Dict] = None) -> Dict[str, Tensor]:
    """Text tokens, masks, positions and positive tokens of the queries.

    Args:
        ref_tokens: ``[B, Q, C]`` one text token per ``<REF>`` query.
        query_mask: ``[B, Q]`` bool; query_groups: ``[B, Q]`` long, the TRP group of each query
            (-1 on padding).
        phrase: ``None``, or the phrase tokens: ``tokens [B, P, C]``, ``mask [B, P]``,
            ``attention [B, P, P]`` (Grounding DINO's sub-sentence mask), ``positions [B, P]``,
            ``group_tokens`` (per sample ``[G, P]`` bool, the tokens of each group's phrase).

    Returns:
        dict: ``tokens [B, T, C]`` (``T = P + Q``), ``mask [B, T]`` (a sample without any token
        keeps its first ``<REF>`` slot: attention over nothing is NaN), ``attention [B, T, T]``
        True where a token may attend (phrase tokens to their sub-sentence; ``<REF>`` tokens to
        the sample's ``<REF>`` tokens and their own phrase), ``positions [B, T]``, ``positive
        [B, Q, T]`` (the tokens of the query's phrase and the ``<REF>`` tokens of its group;
        always its own).
    """
    batch, num_queries = query_mask.shape
    device = query_mask.device
    eye = torch.eye(num_queries, dtype=torch.bool, device=device)
    same_group = (query_groups[:, :, None] == query_groups[:, None, :]) & query_mask[:, None]
    ref_positive = same_group | eye
    ref_attention = (query_mask[:, :, None] & query_mask[:, None, :]) | eye
    ref_mask = query_mask.clone()
    if phrase is None:
        ref_mask[~query_mask.any(1), 0] = True
        return dict(tokens=ref_tokens, mask=ref_mask, attention=ref_attention,
                    positions=ref_tokens.new_zeros(batch, num_queries), positive=ref_positive)
    num_phrase = phrase['tokens'].shape[1]
    ref_mask[~(query_mask.any(1) | phrase['mask'].any(1)), 0] = True
    # each query's phrase tokens: the row of its group
    own_phrase = torch.zeros(batch, num_queries, num_phrase, dtype=torch.bool, device=device)
    for b, groups in enumerate(phrase['group_tokens']):
        for q in query_mask[b].nonzero()[:, 0].tolist():
            group = int(query_groups[b, q])
            if 0 <= group < len(groups):
                own_phrase[b, q] = groups[group].to(device)
    attention = torch.cat([
        torch.cat([phrase['attention'], own_phrase.new_zeros(batch, num_phrase, num_queries)],
                  2),
        torch.cat([own_phrase, ref_attention], 2)], 1)
    return dict(tokens=torch.cat([phrase['tokens'], ref_tokens], 1),
                mask=torch.cat([phrase['mask'], ref_mask], 1), attention=attention,
                positions=torch.cat([phrase['positions'].to(ref_tokens.dtype),
                                     ref_tokens.new_zeros(batch, num_queries)], 1),
                positive=torch.cat([own_phrase, ref_positive], 2))


def with_phrases(data_samples: Sequence[DetDataSample], queries: RoutedQueries,
                 with_groups: bool = False) -> List[DetDataSample]:
    """The samples (same fields, not copied) with ``group_phrases`` (the phrase of each TRP
    group) and, ``with_groups``, ``query_group_ids [Q]`` in their meta."""
    samples = []
    for b, sample in enumerate(data_samples):
        meta = dict(sample.metainfo, group_phrases=list(queries.phrases[b]))
        if with_groups:
            meta['query_group_ids'] = queries.group_ids[b]
        new = DetDataSample(metainfo=meta)
        for key, value in sample.items():
            setattr(new, key, value)
        samples.append(new)
    return samples
