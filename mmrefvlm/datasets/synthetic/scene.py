"""Sampling and rendering one synthetic scene: coloured shapes at known depths on a textured
background, with exact ground truth.

Shapes are drawn far to near, so a nearer shape occludes a farther one; each shape keeps the
mask of its *visible* pixels. The depth map (millimetres, uint16) is a background plane plus each
shape's depth on its visible pixels. All randomness comes from the two generators passed in.
"""
import random
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np

from .shapes import COLOURS, KEYPOINT_KIND, KINDS, category_name, house_keypoints, shape_mask

BACKGROUNDS = ('plain', 'noisy', 'striped', 'gradient')
SIZE_RANGES = {'small': (0.07, 0.10), 'large': (0.15, 0.21)}  # half-extent / canvas side
SHAPE_DEPTH_MM = (1000, 9000)  # shapes lie 1 m .. 9 m from the camera
BACKGROUND_DEPTH_MM = (10000, 16000)  # the background plane lies behind every shape
MIN_VISIBLE_FRACTION = 0.35  # of a shape's own area; more occluded layouts are redrawn
MIN_VISIBLE_PIXELS = 12
_LAYOUT_ATTEMPTS = 20
OUTLINE_SHADE = 0.6  # outline colour = shape colour x this


@dataclass
class Shape:
    """One shape instance.

    Attributes:
        colour, kind: its colour and shape names; ``size`` is 'small' or 'large'.
        cx, cy, r: centre and half-extent, absolute pixels.
        depth_mm: distance from the camera in millimetres.
        mask: bool ``[S, S]``, its visible pixels (after occlusion).
        centroid: ``(x, y)`` mean of the visible pixels, absolute pixels.
        keypoints: ``[[x, y, v], ...]`` in ``KEYPOINT_NAMES`` order for houses (COCO visibility:
            2 visible, 1 occluded by a nearer shape, 0 outside the image with x = y = 0), else None.
    """
    colour: str
    kind: str
    size: str
    cx: int
    cy: int
    r: int
    depth_mm: int
    mask: np.ndarray = field(repr=False, default=None)
    centroid: Tuple[float, float] = (0.0, 0.0)
    keypoints: Optional[List[List[int]]] = None

    @property
    def category(self) -> str:
        return category_name(self.colour, self.kind)


@dataclass
class Scene:
    """A rendered scene: ``image`` uint8 ``[S, S, 3]``, ``depth_mm`` uint16 ``[S, S]``, ``owner``
    int ``[S, S]`` (index into ``shapes`` of the shape seen at each pixel, -1 = background),
    ``shapes`` in drawing order (far to near)."""
    size: int
    background: str
    image: np.ndarray = field(repr=False)
    depth_mm: np.ndarray = field(repr=False)
    owner: np.ndarray = field(repr=False)
    shapes: List[Shape]


def _sample_concepts(rng: random.Random, need_house: bool) -> List[Tuple[str, str]]:
    """(colour, kind) per shape; a concept is repeated in most scenes (one-to-many targets)."""
    count = rng.randint(1, 6)
    concepts = [(rng.choice(list(COLOURS)), rng.choice(KINDS)) for _ in range(count)]
    if count < 6 and rng.random() < 0.6:
        repeated = rng.choice(concepts)
        concepts += [repeated] * rng.randint(1, min(2, 6 - count))
    if need_house and not any(kind == KEYPOINT_KIND for _, kind in concepts):
        concepts[rng.randrange(len(concepts))] = (rng.choice(list(COLOURS)), KEYPOINT_KIND)
    return concepts


def _sample_shapes(rng: random.Random, size: int, concepts) -> List[Shape]:
    depths = rng.sample(range(SHAPE_DEPTH_MM[0], SHAPE_DEPTH_MM[1] + 1, 50), len(concepts))
    shapes = []
    for (colour, kind), depth in zip(concepts, depths):
        size_name = rng.choice(tuple(SIZE_RANGES))
        low, high = SIZE_RANGES[size_name]
        r = max(3, int(round(rng.uniform(low, high) * size)))
        margin = (r * 6) // 10
        shapes.append(Shape(colour, kind, size_name, rng.randint(margin, size - 1 - margin),
                            rng.randint(margin, size - 1 - margin), r, depth))
    shapes.sort(key=lambda shape: -shape.depth_mm)
    return shapes


def _occlude(shapes: List[Shape], size: int) -> Tuple[np.ndarray, List[float]]:
    """Paint far to near; return the owner map and each shape's visible fraction."""
    owner = np.full((size, size), -1, dtype=np.int64)
    full_masks = [shape_mask(s.kind, s.cx, s.cy, s.r, size) for s in shapes]
    for index, full in enumerate(full_masks):
        owner[full] = index
    fractions = []
    for index, (shape, full) in enumerate(zip(shapes, full_masks)):
        shape.mask = owner == index
        visible = int(shape.mask.sum())
        fractions.append(0.0 if visible < MIN_VISIBLE_PIXELS else visible / max(int(full.sum()), 1))
    return owner, fractions


def _layout(rng: random.Random, size: int, need_house: bool) -> Tuple[List[Shape], np.ndarray]:
    """Shapes whose visible parts are large enough: redraw the layout, then drop hidden shapes."""
    concepts = _sample_concepts(rng, need_house)
    for _ in range(_LAYOUT_ATTEMPTS):
        shapes = _sample_shapes(rng, size, concepts)
        owner, fractions = _occlude(shapes, size)
        if min(fractions) >= MIN_VISIBLE_FRACTION:
            return shapes, owner
    while True:
        keep = [s for s, f in zip(shapes, fractions) if f >= MIN_VISIBLE_FRACTION]
        houses = [s for s in shapes if s.kind == KEYPOINT_KIND]
        if need_house and not any(s.kind == KEYPOINT_KIND for s in keep):
            # keep the nearest house and drop what lies in front of it: nothing hides it then
            keep = [s for s in keep if s.depth_mm > houses[-1].depth_mm] + houses[-1:]
        if not keep:
            keep = shapes[-1:]  # the nearest shape is never occluded
        shapes = keep
        owner, fractions = _occlude(shapes, size)
        if min(fractions) >= MIN_VISIBLE_FRACTION or len(shapes) == 1:
            return shapes, owner


def _keypoints(shape: Shape, index: int, owner: np.ndarray) -> List[List[int]]:
    size = owner.shape[0]
    keypoints = []
    for x, y in house_keypoints(shape.cx, shape.cy, shape.r):
        if not (0 <= x < size and 0 <= y < size):
            keypoints.append([0, 0, 0])
        else:
            keypoints.append([x, y, 1 if owner[y, x] > index else 2])
    return keypoints


def _instance_outline(owner: np.ndarray) -> np.ndarray:
    """bool ``[S, S]``: shape pixels with a 4-neighbour seen as something else.

    Drawn darker so that touching shapes of one colour stay separable; they keep their owner.
    """
    padded = np.pad(owner, 1, mode='edge')
    differs = np.zeros(owner.shape, dtype=bool)
    for neighbour in (padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]):
        differs |= neighbour != owner
    return differs & (owner >= 0)


def _background(rng: random.Random, nprng: np.random.Generator, size: int,
                kind: str) -> np.ndarray:
    """uint8 ``[S, S, 3]`` background texture in muted colours."""
    base = np.array([rng.randint(90, 200) for _ in range(3)], dtype=np.float64)
    base = 0.6 * base + 0.4 * base.mean()  # desaturate so that shapes stand out
    image = np.broadcast_to(base, (size, size, 3)).copy()
    if kind == 'noisy':
        image += nprng.normal(0.0, 14.0, size=(size, size, 1))
    elif kind == 'striped':
        period = rng.randint(6, 16)
        rows, cols = np.mgrid[0:size, 0:size]
        coord = rng.choice((rows, cols, rows + cols))
        image[(coord // period) % 2 == 1] -= 35.0
    elif kind == 'gradient':
        ramp = np.linspace(-40.0, 40.0, size)
        image += (ramp[:, None, None] if rng.random() < 0.5 else ramp[None, :, None])
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def sample_scene(rng: random.Random, nprng: np.random.Generator, size: int = 128,
                 need_house: bool = False) -> Scene:
    """Sample and render one scene on a ``size`` x ``size`` canvas.

    Args:
        rng: drives every discrete and geometric choice.
        nprng: drives the background noise.
        size: canvas side in pixels.
        need_house: guarantee at least one house (keypoint tasks).
    """
    shapes, owner = _layout(rng, size, need_house)
    background = rng.choice(BACKGROUNDS)
    image = _background(rng, nprng, size, background)
    # a ground-like plane: farthest at the top row, nearest at the bottom row
    middle = (BACKGROUND_DEPTH_MM[0] + BACKGROUND_DEPTH_MM[1]) // 2
    top = rng.randint(middle, BACKGROUND_DEPTH_MM[1])
    bottom = rng.randint(BACKGROUND_DEPTH_MM[0], middle)
    plane = np.rint(np.linspace(top, bottom, size)).astype(np.uint16)
    depth_mm = np.repeat(plane[:, None], size, axis=1)
    outline = _instance_outline(owner)
    for index, shape in enumerate(shapes):
        rows, cols = np.nonzero(shape.mask)
        shape.centroid = (float(cols.mean()), float(rows.mean()))
        image[shape.mask] = COLOURS[shape.colour]
        edge = shape.mask & outline
        image[edge] = (np.asarray(COLOURS[shape.colour]) * OUTLINE_SHADE).astype(np.uint8)
        depth_mm[shape.mask] = shape.depth_mm
        if shape.kind == KEYPOINT_KIND:
            shape.keypoints = _keypoints(shape, index, owner)
    return Scene(size, background, image, depth_mm, owner, shapes)
