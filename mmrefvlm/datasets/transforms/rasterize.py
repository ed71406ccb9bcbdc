"""Turn record geometry (COCO segmentations, visual prompts) into binary masks.

Every function works in the original image frame: absolute pixels, masks ``uint8 [H, W]`` of
0/1. COCO RLE and polygons go through pycocotools; prompts are drawn with OpenCV.
"""
from typing import Sequence, Union

import cv2
import numpy as np
import pycocotools.mask as mask_utils

Segmentation = Union[dict, Sequence[Sequence[float]]]


def decode_segmentation(segmentation: Segmentation, height: int, width: int) -> np.ndarray:
    """Decode a COCO segmentation into a binary mask.

    Args:
        segmentation: compressed RLE ``{size: [h, w], counts: str}``, uncompressed RLE
            (``counts`` a list of run lengths) or polygons ``[[x1, y1, x2, y2, ...], ...]`` in
            absolute pixels.
        height, width: image size in pixels.

    Returns:
        ``uint8 [height, width]`` mask of 0/1.
    """
    if isinstance(segmentation, dict):
        rle = dict(segmentation)
        if isinstance(rle['counts'], list):
            rle = mask_utils.frPyObjects(rle, *rle['size'])
        elif isinstance(rle['counts'], str):
            rle['counts'] = rle['counts'].encode('ascii')
        mask = mask_utils.decode(rle)
    else:
        polygons = [list(map(float, poly)) for poly in segmentation if len(poly) >= 6]
        if not polygons:
            return np.zeros((height, width), dtype=np.uint8)
        rles = mask_utils.frPyObjects(polygons, height, width)
        mask = mask_utils.decode(mask_utils.merge(rles))
    if mask.shape != (height, width):
        raise ValueError(f'segmentation of size {mask.shape} does not match the image size '
                         f'{(height, width)}')
    return mask.astype(np.uint8)


def point_prompt_mask(point: Sequence[float], height: int, width: int,
                      radius: int) -> np.ndarray:
    """A filled disk of ``radius`` pixels centred on ``point = [x, y]``."""
    mask = np.zeros((height, width), dtype=np.uint8)
    center = (int(round(point[0])), int(round(point[1])))
    cv2.circle(mask, center, int(radius), 1, thickness=-1)
    return mask


def box_prompt_mask(box_xywh: Sequence[float], height: int, width: int) -> np.ndarray:
    """The filled box ``[x, y, w, h]``: pixels whose centres lie inside it (at least one)."""
    mask = np.zeros((height, width), dtype=np.uint8)
    x, y, w, h = map(float, box_xywh)
    x0 = min(max(int(np.floor(x)), 0), width - 1)
    y0 = min(max(int(np.floor(y)), 0), height - 1)
    x1 = min(max(int(np.ceil(x + w)), x0 + 1), width)
    y1 = min(max(int(np.ceil(y + h)), y0 + 1), height)
    mask[y0:y1, x0:x1] = 1
    return mask


def scribble_prompt_mask(points: Sequence[Sequence[float]], height: int, width: int,
                         thickness: int) -> np.ndarray:
    """The polyline through ``points = [[x, y], ...]`` drawn ``thickness`` pixels wide."""
    mask = np.zeros((height, width), dtype=np.uint8)
    pts = np.round(np.asarray(points, dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2)
    if len(pts) == 1:
        cv2.circle(mask, tuple(int(v) for v in pts[0, 0]), max(int(thickness) // 2, 1), 1, -1)
    else:
        cv2.polylines(mask, [pts], isClosed=False, color=1, thickness=int(thickness))
    return mask


def prompt_mask(prompt: dict, height: int, width: int, point_radius: int,
                scribble_width: int) -> np.ndarray:
    """Rasterise one visual prompt of a record (``{type, data}``) to a binary mask.

    Raises:
        ValueError: for an unknown prompt type.
    """
    kind, data = prompt.get('type'), prompt.get('data')
    if kind == 'point':
        return point_prompt_mask(data, height, width, point_radius)
    if kind == 'box':
        return box_prompt_mask(data, height, width)
    if kind == 'scribble':
        return scribble_prompt_mask(data, height, width, scribble_width)
    if kind == 'mask':
        return decode_segmentation(data, height, width)
    raise ValueError(f"unknown prompt type {kind!r}; expected 'point', 'box', 'scribble' or "
                     "'mask'")
