"""The special tokens of the Triplet-Based Referring Paradigm (paper §3.1, Appendix Table 10).

This module is the only place that names them and the only place that registers them with a
tokenizer (and grows a language model's embedding tables to match).
"""
from typing import Any, Dict, Optional

SPECIAL_TOKENS = ('<Phrase>', '</Phrase>', '<Unit>', '</Unit>', '<REF>', '<Task>', '</Task>',
                  '<image>', '<region>')
PAD_TOKEN = '<pad>'


def add_special_tokens(tokenizer: Any, model: Optional[Any] = None) -> Dict[str, int]:
    """Register the TRP special tokens (and a pad token) with ``tokenizer``; idempotent.

    The tokens are added as *additional special tokens*, so the tokenizer never splits them and
    never merges them with neighbouring text. A tokenizer without a pad token gets a new one,
    ``'<pad>'``: padding never reuses a content id (DESIGN.md §2).

    Args:
        tokenizer: a HuggingFace ``PreTrainedTokenizer(Fast)``; modified in place.
        model: optional HuggingFace ``PreTrainedModel``; when its input embedding table has fewer
            rows than ``len(tokenizer)``, its input and output embeddings are resized to
            ``len(tokenizer)`` (``model.resize_token_embeddings``).

    Returns:
        ``{token: id}`` for the 9 ``SPECIAL_TOKENS`` plus ``'pad'`` (the pad token's id).
    """
    registered = set(tokenizer.additional_special_tokens)
    missing = [token for token in SPECIAL_TOKENS if token not in registered]
    if missing:
        tokenizer.add_special_tokens({'additional_special_tokens': missing},
                                     replace_additional_special_tokens=False)
    if tokenizer.pad_token is None:
        tokenizer.add_special_tokens({'pad_token': PAD_TOKEN})
    if model is not None:
        num_embeddings = model.get_input_embeddings().weight.shape[0]
        if num_embeddings < len(tokenizer):
            model.resize_token_embeddings(len(tokenizer))
    return special_token_ids(tokenizer)


def special_token_ids(tokenizer: Any) -> Dict[str, int]:
    """Look up the ids of the TRP special tokens without modifying ``tokenizer``.

    Returns:
        ``{token: id}`` for the 9 ``SPECIAL_TOKENS`` plus ``'pad'``.

    Raises:
        ValueError: a special token or the pad token is not registered (call
            ``add_special_tokens`` first).
    """
    registered = set(tokenizer.all_special_tokens)
    absent = [token for token in SPECIAL_TOKENS if token not in registered]
    if absent:
        raise ValueError(f'tokenizer {type(tokenizer).__name__} lacks the TRP special tokens '
                         f'{absent}; call mmrefvlm.trp.add_special_tokens(tokenizer) first')
    if tokenizer.pad_token_id is None:
        raise ValueError(f'tokenizer {type(tokenizer).__name__} has no pad token; call '
                         'mmrefvlm.trp.add_special_tokens(tokenizer) first')
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    ids['pad'] = tokenizer.pad_token_id
    return ids
