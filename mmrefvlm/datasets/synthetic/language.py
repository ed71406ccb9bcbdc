"""Text about a synthetic scene: referring expressions, grounded captions, questions.

Every expression returned for a target is checked to fit that target only (or, for a group
expression, exactly the instances of one category), so REC/RES/REG ground truth is exact.
"""
import random
from typing import Dict, List, Optional, Sequence, Tuple, Union

from .scene import Scene

POSITION_MARGIN = 0.06  # of the canvas side: how much an extreme shape must lead the next one
_NUMBER_WORDS = ('zero', 'one', 'two', 'three', 'four', 'five', 'six')
_BACKGROUND_WORDS = {'plain': 'plain', 'noisy': 'noisy', 'striped': 'striped',
                     'gradient': 'gradient'}

Segment = Union[str, Tuple[str, List[int]]]


def plural(kind: str) -> str:
    """Plural of a shape kind (every kind takes a plain 's')."""
    return kind + 's'


def _members(scene: Scene, key) -> Dict[str, List[int]]:
    groups: Dict[str, List[int]] = {}
    for index, shape in enumerate(scene.shapes):
        groups.setdefault(key(shape), []).append(index)
    return groups


def _extreme(scene: Scene, indices: Sequence[int], axis: int, largest: bool) -> Optional[int]:
    """The index among ``indices`` with the extreme centroid along ``axis`` (0 = x, 1 = y) when it
    leads the runner-up by ``POSITION_MARGIN``, else None."""
    if len(indices) < 2:
        return None
    ranked = sorted(indices, key=lambda i: scene.shapes[i].centroid[axis], reverse=largest)
    gap = abs(scene.shapes[ranked[0]].centroid[axis] - scene.shapes[ranked[1]].centroid[axis])
    return ranked[0] if gap >= POSITION_MARGIN * scene.size else None


def unique_expressions(scene: Scene, target: int) -> List[str]:
    """Expressions that pick out ``target`` alone among the scene's shapes."""
    shape = scene.shapes[target]
    by_category = _members(scene, lambda s: s.category)
    by_kind = _members(scene, lambda s: s.kind)
    by_colour = _members(scene, lambda s: s.colour)
    same = by_category[shape.category]
    expressions = []
    if len(same) == 1:
        expressions.append(f'the {shape.category}')
    if len(by_kind[shape.kind]) == 1:
        expressions.append(f'the {shape.kind}')
    if len(by_colour[shape.colour]) == 1:
        expressions += [f'the {shape.colour} shape', f'the {shape.colour} object']
    if len(same) > 1 and [scene.shapes[i].size for i in same].count(shape.size) == 1:
        expressions.append(f'the {shape.size} {shape.category}')
    # one position word before the noun on both axes: "the shape at the top" made the small
    # LLM copy the word after a second "the", which it did at chance (docs/experiments.md)
    for group, noun in ((same, shape.category), (list(range(len(scene.shapes))), 'shape')):
        for axis, largest, word in ((0, False, 'leftmost'), (0, True, 'rightmost'),
                                    (1, False, 'topmost'), (1, True, 'bottommost')):
            if _extreme(scene, group, axis, largest) == target:
                expressions.append(f'the {word} {noun}')
    return expressions


def group_expression(scene: Scene, category: str, rng: random.Random) -> Tuple[str, List[int]]:
    """An expression for every shape of ``category`` and their indices ('all the red circles')."""
    members = [i for i, s in enumerate(scene.shapes) if s.category == category]
    colour, kind = category.split(' ', 1)
    if len(members) == 1:
        return f'the {category}', members
    expression = rng.choice((f'the {colour} {plural(kind)}', f'all the {colour} {plural(kind)}',
                             f'every {category}', f'the {_NUMBER_WORDS[len(members)]} '
                             f'{colour} {plural(kind)}'))
    return expression, members


def _count_phrase(category: str, count: int) -> str:
    colour, kind = category.split(' ', 1)
    if count == 1:
        return ('an ' if colour[0] in 'aeiou' else 'a ') + category
    return f'{_NUMBER_WORDS[count]} {colour} {plural(kind)}'


def grounded_caption(scene: Scene, rng: random.Random) -> List[Segment]:
    """A caption as plain text and ``(phrase, instance indices)`` segments.

    Categories are listed left to right (by their leftmost member); a category with several
    members is one phrase grounded to all of them ('two red circles').
    """
    groups = _members(scene, lambda s: s.category)
    order = sorted(groups, key=lambda c: min(scene.shapes[i].centroid[0] for i in groups[c]))
    background = f'a {_BACKGROUND_WORDS[scene.background]} background'
    opening = rng.choice(('There {verb} ', 'The image shows ', 'This picture contains ',
                          'We can see '))
    verb = 'is' if len(order) == 1 and len(groups[order[0]]) == 1 else 'are'
    segments: List[Segment] = [opening.format(verb=verb)]
    for position, category in enumerate(order):
        if position:
            segments.append(' and ' if position == len(order) - 1 else ', ')
        segments.append((_count_phrase(category, len(groups[category])), groups[category]))
    segments.append(f' on {background}.')
    return segments


def caption_text(segments: Sequence[Segment]) -> str:
    """The plain caption of grounded-caption ``segments``."""
    return ''.join(s if isinstance(s, str) else s[0] for s in segments)


def _count_question(scene: Scene, rng: random.Random) -> Tuple[str, str]:
    colour, kind = rng.choice(scene.shapes).category.split(' ', 1)
    style = rng.randrange(3)
    if style == 0:
        count = sum(s.kind == kind for s in scene.shapes)
        return f'How many {plural(kind)} are there?', str(count)
    if style == 1:
        count = sum(s.colour == colour for s in scene.shapes)
        return f'How many {colour} shapes are there?', str(count)
    count = sum(s.category == f'{colour} {kind}' for s in scene.shapes)
    return f'How many {colour} {plural(kind)} are in the image?', str(count)


def question_answer(scene: Scene, rng: random.Random) -> Tuple[str, str]:
    """A (question, short answer) pair about counts, colours, shapes, positions or background."""
    by_kind = _members(scene, lambda s: s.kind)
    by_colour = _members(scene, lambda s: s.colour)
    by_category = _members(scene, lambda s: s.category)
    candidates = [_count_question(scene, rng),
                  ('What pattern does the background have?', _BACKGROUND_WORDS[scene.background])]
    for kind, members in by_kind.items():
        if len(members) == 1:
            candidates.append((f'What colour is the {kind}?', scene.shapes[members[0]].colour))
    for colour, members in by_colour.items():
        if len(members) == 1:
            candidates.append((f'What shape is the {colour} object?',
                               scene.shapes[members[0]].kind))
    for category, members in by_category.items():
        x = scene.shapes[members[0]].centroid[0]
        if len(members) == 1 and abs(x - scene.size / 2) >= POSITION_MARGIN * scene.size:
            candidates.append((f'Is the {category} on the left or on the right of the image?',
                               'left' if x < scene.size / 2 else 'right'))
    return rng.choice(candidates)
