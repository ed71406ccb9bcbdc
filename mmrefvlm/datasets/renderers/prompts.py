"""Visual prompts (point, box, scribble, mask) drawn from an object's binary mask.

Prompt dicts follow ``docs/internals.md`` §2, absolute pixels of the image: a point is the
``[x, y]`` = ``[column, row]`` of a pixel inside the object; a box is the object's ``[x, y, w, h]``;
a scribble is a polyline ``[[x, y], ...]`` of such pixels whose segments stay inside the object;
a mask is the object's RLE.
"""
import random
from typing import Dict, List, Tuple

import numpy as np
from pycocotools import mask as mask_utils

PROMPT_TYPES = ('point', 'box', 'scribble', 'mask')


def encode_rle(mask: np.ndarray) -> Dict:
    """COCO RLE ``{'size': [h, w], 'counts': str}`` of a boolean mask ``[H, W]``."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {'size': [int(s) for s in rle['size']], 'counts': rle['counts'].decode('ascii')}


def mask_bbox(mask: np.ndarray) -> List[int]:
    """``[x, y, w, h]`` (absolute pixels) of the pixels set in ``mask [H, W]`` (as ``toBbox``)."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError('mask_bbox: the mask is empty')
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]


def _interior_pixels(mask: np.ndarray) -> np.ndarray:
    """``[N, 2]`` (x, y) of mask pixels whose 4 neighbours are also set (all pixels if none)."""
    padded = np.pad(mask, 1)
    interior = (mask & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2]
                & padded[1:-1, 2:])
    rows, cols = np.nonzero(interior if interior.any() else mask)
    return np.stack([cols, rows], axis=1)


def _segment_inside(mask: np.ndarray, start: Tuple[int, int], end: Tuple[int, int]) -> bool:
    """Whether every pixel that any point of the segment rounds to lies in ``mask``."""
    steps = 4 * max(abs(end[0] - start[0]), abs(end[1] - start[1])) + 1
    xs = np.linspace(start[0], end[0], steps)
    ys = np.linspace(start[1], end[1], steps)
    for col in (np.floor(xs), np.ceil(xs)):
        for row in (np.floor(ys), np.ceil(ys)):
            if not mask[row.astype(int), col.astype(int)].all():
                return False
    return True


def _scribble(mask: np.ndarray, rng: random.Random, num_points: int = 4,
              attempts: int = 20) -> List[List[int]]:
    """A polyline of 2 to ``num_points`` interior pixels with every segment inside ``mask``."""
    pixels = _interior_pixels(mask)
    start = pixels[rng.randrange(len(pixels))]
    line = [(int(start[0]), int(start[1]))]
    for _ in range(num_points - 1):
        for _ in range(attempts):
            candidate = pixels[rng.randrange(len(pixels))]
            candidate = (int(candidate[0]), int(candidate[1]))
            if candidate != line[-1] and _segment_inside(mask, line[-1], candidate):
                line.append(candidate)
                break
    if len(line) == 1:  # a polyline needs two points: repeat the pixel on a tiny object
        line.append(line[0])
    return [list(point) for point in line]


def sample_prompt(kind: str, mask: np.ndarray, rng: random.Random) -> Dict:
    """A visual prompt of type ``kind`` for the object whose pixels are set in ``mask``.

    Args:
        kind: one of ``PROMPT_TYPES``.
        mask: bool ``[H, W]``, the object's (visible) pixels in image coordinates.
        rng: drives the choice of point / scribble pixels.

    Returns:
        ``{'type': kind, 'data': ...}`` as in ``docs/internals.md`` §2.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        raise ValueError(f'sample_prompt: cannot place a {kind} prompt on an empty mask')
    if kind == 'point':
        pixels = _interior_pixels(mask)
        x, y = pixels[rng.randrange(len(pixels))]
        data = [int(x), int(y)]
    elif kind == 'box':
        data = mask_bbox(mask)
    elif kind == 'scribble':
        data = _scribble(mask, rng)
    elif kind == 'mask':
        data = encode_rle(mask)
    else:
        raise ValueError(f'sample_prompt: unknown prompt type {kind!r}; known: {PROMPT_TYPES}')
    return {'type': kind, 'data': data}
