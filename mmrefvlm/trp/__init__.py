"""The Triplet-Based Referring Paradigm (paper §3.1–3.2, DESIGN.md §2): the single source of the
special tokens and of every TRP string, composed and parsed. Pure Python (no torch, no numpy).
"""
from .compose import compose_answer, compose_cot, compose_task_command, compose_triplet
from .parse import (Triplet, TRPParseError, cot_items, parse_answer, replace_unit_groups,
                    strip_tags)
from .token_parse import TokenTriplet, parse_ref_tokens
from .tokens import PAD_TOKEN, SPECIAL_TOKENS, add_special_tokens, special_token_ids

__all__ = [
    'SPECIAL_TOKENS', 'PAD_TOKEN', 'add_special_tokens', 'special_token_ids', 'compose_triplet',
    'compose_answer', 'compose_cot', 'compose_task_command', 'Triplet', 'TRPParseError',
    'parse_answer', 'cot_items', 'replace_unit_groups', 'strip_tags', 'TokenTriplet',
    'parse_ref_tokens'
]
