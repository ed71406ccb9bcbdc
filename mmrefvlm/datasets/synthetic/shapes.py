"""The shape vocabulary of the synthetic scenes and its rasterisation.

Every shape is drawn from integer geometry (centre, half-extent ``r``) into a boolean mask of
the canvas with PIL, so masks, boxes and keypoints are exact. The ``house`` is the keypoint
family: its five keypoints are vertices of its outline.
"""
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image, ImageDraw

COLOURS: Dict[str, Tuple[int, int, int]] = {
    'red': (220, 40, 40),
    'green': (40, 170, 60),
    'blue': (40, 80, 225),
    'yellow': (235, 215, 40),
    'purple': (145, 60, 185),
    'orange': (250, 140, 30),
}
KINDS = ('circle', 'square', 'triangle', 'diamond', 'star', 'hexagon', 'house')
KEYPOINT_KIND = 'house'
KEYPOINT_NAMES = ('roof apex', 'left eave', 'right eave', 'bottom left', 'bottom right')
# OKS sigmas: the corners of a flat outline are as easy to place as COCO's eyes (0.025).
KEYPOINT_SIGMAS = (0.025, 0.025, 0.025, 0.025, 0.025)
SKELETON = ((0, 1), (0, 2), (1, 2), (1, 3), (2, 4), (3, 4))

Point = Tuple[int, int]


def category_name(colour: str, kind: str) -> str:
    """The category of a shape: '{colour} {kind}' ('red circle')."""
    return f'{colour} {kind}'


def all_categories() -> List[str]:
    """Every category the generator can produce, sorted."""
    return sorted(category_name(c, k) for c in COLOURS for k in KINDS)


def _regular_polygon(cx: int, cy: int, r: int, sides: int, phase: float) -> List[Point]:
    angles = phase + 2 * np.pi * np.arange(sides) / sides
    return [(int(round(cx + r * np.cos(a))), int(round(cy + r * np.sin(a)))) for a in angles]


def _star(cx: int, cy: int, r: int) -> List[Point]:
    angles = -np.pi / 2 + np.pi * np.arange(10) / 5
    radii = np.where(np.arange(10) % 2 == 0, r, 0.45 * r)
    return [(int(round(cx + rad * np.cos(a))), int(round(cy + rad * np.sin(a))))
            for a, rad in zip(angles, radii)]


def house_keypoints(cx: int, cy: int, r: int) -> List[Point]:
    """The house's keypoints ``(x, y)`` in ``KEYPOINT_NAMES`` order, absolute pixels."""
    eave_y = cy - (r * 3) // 10
    return [(cx, cy - r), (cx - r, eave_y), (cx + r, eave_y), (cx - (r * 7) // 10, cy + r),
            (cx + (r * 7) // 10, cy + r)]


def _house(cx: int, cy: int, r: int) -> List[Point]:
    apex, left_eave, right_eave, bottom_left, bottom_right = house_keypoints(cx, cy, r)
    wall_right = (bottom_right[0], right_eave[1])
    wall_left = (bottom_left[0], left_eave[1])
    return [apex, right_eave, wall_right, bottom_right, bottom_left, wall_left, left_eave]


def shape_mask(kind: str, cx: int, cy: int, r: int, size: int) -> np.ndarray:
    """Boolean mask ``[size, size]`` of a ``kind`` shape centred at ``(cx, cy)``, half-extent ``r``.

    Parts outside the canvas are clipped.
    """
    canvas = Image.new('L', (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    if kind == 'circle':
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=1)
    elif kind == 'square':
        half = (r * 8) // 10
        draw.rectangle([cx - half, cy - half, cx + half, cy + half], fill=1)
    elif kind == 'triangle':
        draw.polygon([(cx, cy - r), (cx + r, cy + (r * 8) // 10), (cx - r, cy + (r * 8) // 10)],
                     fill=1)
    elif kind == 'diamond':
        draw.polygon(_regular_polygon(cx, cy, r, 4, 0.0), fill=1)
    elif kind == 'star':
        draw.polygon(_star(cx, cy, r), fill=1)
    elif kind == 'hexagon':
        draw.polygon(_regular_polygon(cx, cy, r, 6, 0.0), fill=1)
    elif kind == 'house':
        draw.polygon(_house(cx, cy, r), fill=1)
    else:
        raise ValueError(f'shape_mask: unknown shape kind {kind!r}; known: {KINDS}')
    return np.asarray(canvas, dtype=bool)
