"""Parse TRP answers (paper §3.1, Appendix A) into phrase-unit-<REF> triplets.

Grammar accepted by :func:`parse_answer` (``ws`` = optional whitespace)::

    answer  := [ws COT] body
    COT     := '<Task>' any text '</Task>'                   (the VD-CoT block, skipped)
    body    := { text | phrase }
    phrase  := '<Phrase>' body '</Phrase>' [ws groups]      (phrases may nest)
    groups  := '(' ws item { ws ',' ws item } ws ')'
    item    := group | '(' ws group ws ')'
    group   := '<Unit>' unit { ',' unit } '</Unit>' ref { ref }
    ref     := ws '[' ws integer ws ']' ws '<REF>'

So ``<Phrase>dog</Phrase>(<Unit>box</Unit>[0]<REF>[1]<REF>)`` is one group, and the paper's
``<Phrase>capybaras</Phrase>((<Unit> box</Unit>[0]<REF>[1]<REF>), <Unit>box </Unit>[1]<REF>)``
is a list of two groups of the same phrase. Whitespace inside tags is stripped and runs of
whitespace inside a phrase are collapsed to one space.
"""
import re
from dataclasses import dataclass
from typing import Callable, Iterable

_TAG = re.compile(r'</?(?:Phrase|Unit|Task)>|<REF>')
_WS = re.compile(r'\s*')
_GROUPS_START = re.compile(r'\s*\(\s*(?:\(\s*)?<Unit>')
_INDEX = re.compile(r'\[([^\]<>]*)\]')
_INTEGER = re.compile(r'\s*[+-]?\d+\s*')

# strip_tags: the VD-CoT block, whole unit-group lists, then any leftover tag or [i]<REF>. Every
# pattern starts at a literal and no repeated class can run into its own start character (an
# index excludes '['), so each search is linear in the text: no start position rescans a run of
# spaces or brackets that the previous one already read.
_COT_BLOCK = re.compile(r'<Task>.*?(?:</Task>|$)', re.S)
_REF_INDEX = r'\[[^\[\]<>]*\]'
_UNIT_GROUP = rf'<Unit>[^<]*</Unit>(?:\s*(?:{_REF_INDEX}\s*)?<REF>)*'
_UNIT_ITEM = rf'(?:\(\s*{_UNIT_GROUP}\s*\)|{_UNIT_GROUP})'
_UNIT_GROUPS = re.compile(rf'\(\s*{_UNIT_ITEM}(?:\s*,\s*{_UNIT_ITEM})*\s*\)')
_LEFTOVER = re.compile(rf'<Unit>[^<]*(?:</Unit>|$)|(?:{_REF_INDEX}\s*)?<REF>'
                       r'|</?(?:Phrase|Unit|Task)>')

# Phrases may nest (paper §3.1) but never deeply; the bound keeps the parser's stack small
# whatever a model generates.
MAX_PHRASE_DEPTH = 16


@dataclass(frozen=True)
class Triplet:
    """One (phrase, unit group) of a TRP answer.

    Args:
        phrase: the concept, tags removed and whitespace normalised (a nested phrase's text
            includes its inner phrases' text: ``'dog in park'``).
        units: the unit names of the group, e.g. ``('box',)`` or ``('box', 'keypoint')``.
        num_refs: number of ``<REF>`` tokens in the group (= target instances).
        ref_ordinals: 0-based index of each of the group's ``<REF>`` among all ``<REF>`` tokens
            of the answer, in order (how the targets are listed).
        phrase_span: ``(start, end)`` character offsets of the phrase content in the parsed text,
            between ``<Phrase>`` and ``</Phrase>`` (so ``text[start:end]`` is the raw content).
    """
    phrase: str
    units: tuple[str, ...]
    num_refs: int
    ref_ordinals: tuple[int, ...]
    phrase_span: tuple[int, int]


class TRPParseError(ValueError):
    """A malformed TRP string; ``offset`` is the character offset of the fault."""

    def __init__(self, message: str, offset: int, text: str = ''):
        self.offset = offset
        near = f' near {text[offset:offset + 30]!r}' if text else ''
        super().__init__(f'TRP parse error at character {offset}{near}: {message}')


def parse_answer(text: str) -> list[Triplet]:
    """Parse a TRP answer (optionally led by its VD-CoT block) into triplets.

    Plain text may sit between triplets (grounded conversation). A phrase without a unit group
    yields no triplet. Triplets come in the order of their unit groups, i.e. in ``<REF>`` order.

    Runs in time linear in ``len(text)`` (phrases nest at most :data:`MAX_PHRASE_DEPTH` deep).

    Raises:
        TRPParseError: unbalanced or unclosed tags, ``<REF>`` outside a unit group, ``<Unit>``
            not following a phrase, an empty phrase or unit, a unit group without ``<REF>``,
            a non-integer ``[x]`` index, a ``<Task>`` block that is not at the start, or
            phrases nested more than :data:`MAX_PHRASE_DEPTH` deep.
    """
    return _AnswerParser(text).parse()


def cot_items(triplets: Iterable[Triplet]) -> list[tuple[str, str, int]]:
    """``(phrase, unit, num)`` per triplet, as ``compose_cot`` takes them.

    Composite units are joined with ``', '`` (``('box', 'keypoint')`` → ``'box, keypoint'``).
    """
    return [(t.phrase, ', '.join(t.units), t.num_refs) for t in triplets]


def strip_tags(text: str) -> str:
    """Plain text of a (possibly malformed) TRP string, for caption metrics; never raises.

    Linear in ``len(text)``. Removes the VD-CoT block, every unit group with its ``[i]<REF>``
    tokens and every remaining tag, then collapses whitespace:
    ``'A <Phrase>dog</Phrase>(<Unit>box</Unit>[0]<REF>) runs.'`` → ``'A dog runs.'``.
    """
    # each pattern needs its tag: a plain substring search skips the regex scan of plain text
    if '<Task>' in text:
        text = _COT_BLOCK.sub(' ', text)
    if '<Unit>' in text:
        text = _remove_unit_group_lists(text)
    if '<' in text:
        text = _LEFTOVER.sub('', text)
    return ' '.join(text.split())


def _remove_unit_group_lists(text: str) -> str:
    """Drop every unit-group list ``(<Unit>..</Unit>[0]<REF>, ...)`` and the whitespace before
    it, so ``'dog (<Unit>box</Unit>[0]<REF>).'`` becomes ``'dog.'``."""
    pieces, pos = [], 0
    for match in _UNIT_GROUPS.finditer(text):
        pieces.append(text[pos:match.start()].rstrip())
        pos = match.end()
    pieces.append(text[pos:])
    return ''.join(pieces)


@dataclass(frozen=True)
class _Plain:
    """Tag-free text with its whitespace collapsed (``words``) and whether the raw text began /
    ended with whitespace, so that pieces join as their joined raw text would collapse."""
    words: str
    lead: bool
    trail: bool

    @staticmethod
    def of(raw: str) -> '_Plain':
        return _Plain(' '.join(raw.split()), raw[:1].isspace(), raw[-1:].isspace())

    @staticmethod
    def join(parts: list['_Plain']) -> '_Plain':
        """``_Plain.of`` the concatenated raw texts, without splitting them again (nested
        phrases then cost one pass over their text, not one per level)."""
        words: list[str] = []
        gap = lead = trail = False
        started = False
        for part in parts:
            if not part.words and not part.lead:  # empty raw text
                continue
            if not started:
                lead, started = part.lead, True
            if part.words:
                if words and (gap or part.lead):
                    words.append(' ')
                words.append(part.words)
                gap = part.trail
            else:  # whitespace only
                gap = True
            trail = part.trail
        return _Plain(''.join(words), lead, trail)


class _AnswerParser:
    """Recursive-descent parser of one TRP string; see the module docstring for the grammar."""

    def __init__(self, text: str):
        if not isinstance(text, str):
            raise TypeError(f'parse_answer expects a str, got {type(text).__name__}')
        self.text = text
        self.triplets: list[Triplet] = []
        self.num_refs = 0

    def parse(self) -> list[Triplet]:
        self._parse_body(self._skip_cot(), opening=None, depth=0)
        return self.triplets

    def _error(self, message: str, offset: int) -> TRPParseError:
        return TRPParseError(message, offset, self.text)

    def _skip_ws(self, pos: int) -> int:
        return _WS.match(self.text, pos).end()

    def _skip_cot(self) -> int:
        start = self._skip_ws(0)
        if not self.text.startswith('<Task>', start):
            return 0
        close = self.text.find('</Task>', start)
        if close < 0:
            raise self._error('unclosed <Task> (the VD-CoT block has no </Task>)', start)
        return close + len('</Task>')

    def _parse_body(self, pos: int, opening: int | None, depth: int) -> tuple[int, _Plain]:
        """Parse text and phrases from ``pos``, inside ``depth`` open phrases.

        Returns:
            tuple: the offset of the ``</Phrase>`` closing the phrase opened at ``opening`` (or
            ``len(text)`` at top level, ``opening is None``), and the body's text without its
            tags and unit-group lists (what :func:`strip_tags` keeps of it).
        """
        pieces: list[_Plain] = []
        while True:
            match = _TAG.search(self.text, pos)
            if match is None:
                if opening is not None:
                    raise self._error('unclosed <Phrase> (no matching </Phrase>)', opening)
                return len(self.text), _Plain('', False, False)
            tag, start = match.group(), match.start()
            if opening is not None:  # only a phrase needs its text
                pieces.append(_Plain.of(self.text[pos:start]))
            if tag == '<Phrase>':
                pos, inner = self._parse_phrase(start, depth + 1)
                pieces.append(inner)
            elif tag == '</Phrase>':
                if opening is None:
                    raise self._error('stray </Phrase> with no open <Phrase>', start)
                return start, _Plain.join(pieces)
            elif tag == '<Unit>':
                raise self._error("<Unit> must follow a phrase, as in "
                                  "'<Phrase>dog</Phrase>(<Unit>box</Unit>[0]<REF>)'", start)
            elif tag == '<REF>':
                raise self._error("<REF> outside a unit group; write "
                                  "'<Phrase>...</Phrase>(<Unit>unit</Unit>[0]<REF>)'", start)
            elif tag == '<Task>':
                raise self._error('a <Task> (VD-CoT) block is only allowed at the start', start)
            else:
                raise self._error(f'stray {tag} with no matching opening tag', start)

    def _parse_phrase(self, start: int, depth: int) -> tuple[int, _Plain]:
        """Parse ``<Phrase>...</Phrase>`` at ``start`` (the ``depth``-th open phrase) and its
        unit groups; return the end and the phrase's text."""
        if depth > MAX_PHRASE_DEPTH:
            raise self._error(f'phrases nested more than {MAX_PHRASE_DEPTH} deep', start)
        content_start = start + len('<Phrase>')
        content_end, text = self._parse_body(content_start, opening=start, depth=depth)
        end = content_end + len('</Phrase>')
        if not text.words:
            raise self._error('empty phrase', start)
        if _GROUPS_START.match(self.text, end):
            return self._parse_groups(end, text.words, (content_start, content_end)), text
        return end, text

    def _parse_groups(self, pos: int, phrase: str, span: tuple[int, int]) -> int:
        """Parse the unit-group list that follows a phrase; return the offset after its ')'."""
        list_open = self._skip_ws(pos)
        pos = list_open + 1
        while True:
            pos = self._skip_ws(pos)
            item_open = pos if self.text.startswith('(', pos) else None
            if item_open is not None:
                pos = self._skip_ws(pos + 1)
            pos = self._skip_ws(self._parse_group(pos, phrase, span))
            if item_open is not None:
                if not self.text.startswith(')', pos):
                    raise self._error(
                        f"expected ')' closing the unit group opened at character {item_open}",
                        pos)
                pos = self._skip_ws(pos + 1)
            if self.text.startswith(',', pos):
                pos += 1
            elif self.text.startswith(')', pos):
                return pos + 1
            else:
                raise self._error("expected ',' or ')' after a unit group (its list opened at "
                                  f'character {list_open})', pos)

    def _parse_group(self, pos: int, phrase: str, span: tuple[int, int]) -> int:
        """Parse ``<Unit>...</Unit>[0]<REF>...`` at ``pos``; record its triplet; return the end."""
        if not self.text.startswith('<Unit>', pos):
            raise self._error('expected <Unit> in a unit group', pos)
        close = _TAG.search(self.text, pos + len('<Unit>'))
        if close is None or close.group() != '</Unit>':
            raise self._error('unclosed <Unit> (no </Unit> before the next tag)', pos)
        units = tuple(' '.join(unit.split())
                      for unit in self.text[pos + len('<Unit>'):close.start()].split(','))
        if not all(units):
            raise self._error('empty unit name in <Unit>...</Unit>', pos)
        ordinals = []
        pos = close.end()
        while True:
            bracket = self._skip_ws(pos)
            if not self.text.startswith('[', bracket):
                break
            index = _INDEX.match(self.text, bracket)
            if index is None:
                raise self._error("unclosed '[' before <REF>", bracket)
            if not _INTEGER.fullmatch(index.group(1)):
                raise self._error(f'{index.group()!r} before <REF> is not an integer index',
                                  bracket)
            ref = self._skip_ws(index.end())
            if not self.text.startswith('<REF>', ref):
                raise self._error(f"expected <REF> after {index.group()!r}", ref)
            ordinals.append(self.num_refs)
            self.num_refs += 1
            pos = ref + len('<REF>')
        if not ordinals:
            at = self._skip_ws(pos)
            if self.text.startswith('<REF>', at):
                raise self._error("<REF> without its '[i]' index (write '[0]<REF>')", at)
            raise self._error("unit group with no '[i]<REF>'", at)
        self.triplets.append(Triplet(phrase, units, len(ordinals), tuple(ordinals), span))
        return pos


def replace_unit_groups(text: str, replace: Callable[[tuple[int, ...]], str]) -> str:
    """``text`` with every phrase's unit-group list replaced by ``replace(ref_ordinals)``, the
    0-based ``<REF>`` ordinals (answer order) of the list: how stage 1 writes the targets as
    text (``'<Phrase>dog</Phrase>(<Unit>box</Unit>[0]<REF>)'`` → ``'<Phrase>dog</Phrase>'
    + replace((0,))``). The text is parsed first, so a malformed answer raises.

    Raises:
        TRPParseError: as :func:`parse_answer`.
    """
    parse_answer(text)
    next_ordinal = 0

    def _replace(match: re.Match) -> str:
        nonlocal next_ordinal
        count = match.group(0).count('<REF>')
        ordinals = tuple(range(next_ordinal, next_ordinal + count))
        next_ordinal += count
        return replace(ordinals)

    return _UNIT_GROUPS.sub(_replace, text)
