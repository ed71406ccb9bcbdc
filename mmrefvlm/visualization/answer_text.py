"""The readable form of a generated TRP answer: tags stripped, each phrase marked with its triplet.

``'<Task>...</Task>A <Phrase>dog</Phrase>(<Unit>box</Unit>[0]<REF>) runs.'`` reads
``A dog runs.`` with ``dog`` belonging to triplet 0, so a picture can colour the phrase as it
colours the dog's box. Parsing and stripping are :mod:`mmrefvlm.trp`'s; this module only cuts
the text at the phrase spans the parser reports.
"""
from dataclasses import dataclass
from typing import List, Optional

from mmrefvlm.trp import TRPParseError, parse_answer, strip_tags


@dataclass(frozen=True)
class AnswerSpan:
    """A run of readable answer text.

    Args:
        text: the run, tags removed.
        triplet: index of the triplet (in ``<REF>`` order) whose phrase this run is, or ``None``
            for plain text.
    """
    text: str
    triplet: Optional[int] = None


def task_block(text: str) -> str:
    """The VD-CoT block (``<Task>...</Task>``) that leads ``text``, without its tags; ``''``
    when there is none."""
    start = text.find('<Task>')
    if start < 0 or text[:start].strip():
        return ''
    end = text.find('</Task>', start)
    body = text[start + len('<Task>'):end if end >= 0 else len(text)]
    return '\n'.join(line.strip() for line in body.strip().splitlines())


def readable_answer(text: str) -> List[AnswerSpan]:
    """Split a generated answer into plain runs and phrase runs (tags and VD-CoT removed).

    A phrase nested in another phrase belongs to the outer one. An answer that does not parse
    (a model may generate malformed TRP) is one plain run of :func:`strip_tags` text.

    Args:
        text: the decoded answer, special tokens kept.

    Returns:
        The runs in reading order; joining their ``text`` with spaces gives the readable answer.
    """
    try:
        triplets = parse_answer(text)
    except TRPParseError:
        plain = strip_tags(text)
        return [AnswerSpan(plain)] if plain else []
    first = {}  # a phrase with several unit groups takes its first group's triplet
    for index, triplet in enumerate(triplets):
        first.setdefault(triplet.phrase_span, index)
    spans: List[AnswerSpan] = []
    cursor = 0
    for (start, end), index in sorted(first.items()):
        if start < cursor:
            continue  # nested in the previous phrase
        _append(spans, strip_tags(text[cursor:start]), None)
        _append(spans, strip_tags(text[start:end]), index)
        cursor = end
    _append(spans, strip_tags(text[cursor:]), None)
    return spans


def _append(spans: List[AnswerSpan], text: str, triplet: Optional[int]) -> None:
    if text:
        spans.append(AnswerSpan(text, triplet))

