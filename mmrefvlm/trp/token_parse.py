"""Group the ``<REF>`` tokens of a token sequence into triplets, for the latent embedding router.

This scanner runs on generated answers, which may be malformed, so it never raises on content:
whatever cannot be grouped (a ``<REF>`` with no preceding unit, a unit with no phrase before it,
a group with an empty unit) is skipped. On well-formed text it gives the same triplets, in the
same order, as :func:`mmrefvlm.trp.parse_answer`.
"""
import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

from .parse import strip_tags

_GROUPING_TOKENS = ('<Phrase>', '</Phrase>', '<Unit>', '</Unit>', '<REF>', '<Task>', '</Task>')
# Text allowed between a phrase and its first <Unit>, between a group's <REF>s, and between
# two groups of one phrase.
_OPENER = re.compile(r'[\s(]*')
_INDICES = re.compile(r'\s*(?:\[[^\]]*\]\s*)*')
_SEPARATOR = re.compile(r'\s*\)?\s*,\s*\(?\s*')


@dataclass(frozen=True)
class TokenTriplet:
    """One (phrase, unit group) found in a token sequence.

    Args:
        phrase: the phrase text, tags removed and whitespace normalised (may be ``''`` when a
            generated phrase is empty).
        units: the unit names of the group, e.g. ``('box', 'keypoint')``; never empty.
        ref_positions: indices into ``token_ids`` of the group's ``<REF>`` tokens, ascending;
            never empty.
        phrase_span: ``(start, end)`` indices into ``token_ids`` of the phrase's content, between
            ``<Phrase>`` and ``</Phrase>`` (empty when ``start == end``); not compared.
    """
    phrase: str
    units: tuple[str, ...]
    ref_positions: tuple[int, ...]
    phrase_span: tuple[int, int] = field(default=(0, 0), compare=False)


def parse_ref_tokens(token_ids: Sequence[int], special_ids: dict[str, int],
                     decode: Callable[[Sequence[int]], str]) -> list[TokenTriplet]:
    """Find the phrase-unit-``<REF>`` triplets of a token sequence.

    Args:
        token_ids: token ids ``[L]`` (any sequence of ints, e.g. a list or a 1-D tensor).
        special_ids: ``{token: id}`` as returned by :func:`mmrefvlm.trp.add_special_tokens`.
        decode: maps a run of ordinary token ids to text, e.g.
            ``lambda ids: tokenizer.decode(ids, clean_up_tokenization_spaces=False)``. Phrase
            and unit texts are ``decode(ids between the tags)``, stripped; a nested phrase's
            text joins the decoded runs between its inner tags.

    Returns:
        One :class:`TokenTriplet` per unit group, in sequence order. Tokens inside a
        ``<Task>...</Task>`` (VD-CoT) block are ignored.

    Raises:
        ValueError: ``special_ids`` lacks one of the TRP tags.
    """
    missing = [token for token in _GROUPING_TOKENS if token not in special_ids]
    if missing:
        raise ValueError(f'parse_ref_tokens: special_ids lacks {missing}; pass the dict '
                         'returned by mmrefvlm.trp.add_special_tokens')
    return _RefTokenScanner([int(i) for i in token_ids], special_ids, decode).scan()


class _RefTokenScanner:
    """A tolerant left-to-right scan of one token sequence.

    State: a stack of open phrases; the phrase whose unit groups may follow (``owner``) and
    where we are relative to them (``'opener'``: between ``</Phrase>`` and the first
    ``<Unit>``; ``'separator'``: between two groups; ``'group'``: inside a group, collecting
    ``<REF>`` positions).
    """

    def __init__(self, ids: list[int], special_ids: dict[str, int],
                 decode: Callable[[Sequence[int]], str]):
        self.ids = ids
        self.decode = decode
        tag_of = {special_ids[token]: token for token in _GROUPING_TOKENS}
        self.tags = [tag_of.get(i) for i in ids]
        self.triplets: list[TokenTriplet] = []
        self.open_phrases: list[int] = []
        self.owner: str | None = None
        self.owner_span = (0, 0)
        self.where = ''
        self.units: tuple[str, ...] = ()
        self.refs: list[int] = []

    def scan(self) -> list[TokenTriplet]:
        pos = 0
        while pos < len(self.ids):
            tag = self.tags[pos]
            if tag is None:
                end = self._next_tag(pos)
                self._on_text(self._decode(pos, end))
                pos = end
                continue
            if tag == '<Task>':
                self._close_owner()
                end = self._next_tag(pos + 1, '</Task>')
                pos = end + 1
                continue
            pos = self._on_tag(tag, pos)
        self._close_owner()
        return self.triplets

    def _on_text(self, text: str) -> None:
        if self.owner is None:
            return
        if self.where == 'group':
            if _INDICES.fullmatch(text):
                return
            self._close_group()
            if _SEPARATOR.fullmatch(text):
                self.where = 'separator'
                return
        elif _OPENER.fullmatch(text):
            return
        self.owner = None

    def _on_tag(self, tag: str, pos: int) -> int:
        """Handle the tag at ``pos``; return where scanning resumes."""
        if tag == '<REF>':
            if self.owner is not None and self.where == 'group':
                self.refs.append(pos)
            return pos + 1
        if tag == '<Unit>':
            return self._on_unit(pos)
        self._close_owner()
        if tag == '<Phrase>':
            self.open_phrases.append(pos + 1)
        elif tag == '</Phrase>' and self.open_phrases:
            start = self.open_phrases.pop()
            self.owner = self._phrase_text(start, pos)
            self.owner_span = (start, pos)
            self.where = 'opener'
        return pos + 1

    def _on_unit(self, pos: int) -> int:
        self._close_group()
        close = self._next_tag(pos + 1)
        if self.owner is None or close == len(self.ids) or self.tags[close] != '</Unit>':
            self.owner = None
            return pos + 1
        units = (' '.join(unit.split()) for unit in self._decode(pos + 1, close).split(','))
        self.units = tuple(unit for unit in units if unit)
        self.where = 'group'
        return close + 1

    def _close_group(self) -> None:
        if self.owner is not None and self.where == 'group' and self.units and self.refs:
            self.triplets.append(TokenTriplet(self.owner, self.units, tuple(self.refs),
                                              self.owner_span))
        self.units, self.refs = (), []

    def _close_owner(self) -> None:
        self._close_group()
        self.owner = None

    def _phrase_text(self, start: int, end: int) -> str:
        """Text of the phrase content ``ids[start:end]``, inner tags and unit groups removed."""
        pieces = []
        pos = start
        while pos < end:
            tag = self.tags[pos]
            if tag is None:
                run_end = min(self._next_tag(pos), end)
                pieces.append(self._decode(pos, run_end))
                pos = run_end
            else:
                pieces.append(tag)
                pos += 1
        return strip_tags(''.join(pieces))

    def _next_tag(self, pos: int, wanted: str | None = None) -> int:
        """Index of the first tag (or the first ``wanted`` tag) at or after ``pos``, else L."""
        while pos < len(self.ids) and (self.tags[pos] is None or
                                       (wanted is not None and self.tags[pos] != wanted)):
            pos += 1
        return pos

    def _decode(self, start: int, end: int) -> str:
        return self.decode(self.ids[start:end]) if end > start else ''
