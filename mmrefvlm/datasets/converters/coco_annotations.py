"""COCO-style annotations → VT-Instruct instances (``docs/internals.md`` §2).

Boxes stay COCO ``[x, y, w, h]`` in absolute pixels, clipped to the image; polygons are kept
(polygons of fewer than 3 points are dropped), RLEs are written compressed with ``counts`` as
``str``. Decoding and encoding masks goes through ``pycocotools``.
"""
import json
import os.path as osp
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from ..renderers import ImageInfo

Segmentation = Union[List[List[float]], Dict]


def load_json(path: str):
    """Read a JSON file; raise ``ValueError`` naming the file when it does not parse."""
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except json.JSONDecodeError as error:
        raise ValueError(f'{path}: not valid JSON: {error}') from None


def clip_box(bbox: Sequence[float], width: int, height: int) -> Optional[List[float]]:
    """``bbox`` ``[x, y, w, h]`` (absolute pixels) clipped to the image; ``None`` if empty."""
    x1, y1 = max(float(bbox[0]), 0.0), max(float(bbox[1]), 0.0)
    x2 = min(float(bbox[0]) + float(bbox[2]), float(width))
    y2 = min(float(bbox[1]) + float(bbox[3]), float(height))
    if x2 <= x1 or y2 <= y1:
        return None
    return [x1, y1, x2 - x1, y2 - y1]


def compress_rle(rle: Mapping) -> Dict:
    """A compressed RLE ``{size: [h, w], counts: str}`` from a compressed or uncompressed one."""
    height, width = (int(s) for s in rle['size'])
    counts = rle['counts']
    if isinstance(counts, list):
        rle = mask_utils.frPyObjects(dict(rle), height, width)
        counts = rle['counts']
    if isinstance(counts, bytes):
        counts = counts.decode('ascii')
    return {'size': [height, width], 'counts': counts}


def normalize_segmentation(segm, height: int, width: int) -> Optional[Segmentation]:
    """The record form of a COCO ``segmentation``; ``None`` when nothing usable is left.

    Polygons keep their coordinates (each an even-length list of at least 6 numbers); an RLE
    becomes compressed with a ``str`` ``counts``. An RLE whose size is not ``[height, width]``
    is unusable.
    """
    if isinstance(segm, dict):
        if [int(s) for s in segm.get('size', ())] != [height, width]:
            return None
        return compress_rle(segm)
    if isinstance(segm, list):
        polygons = [[float(v) for v in poly] for poly in segm
                    if isinstance(poly, list) and len(poly) >= 6 and len(poly) % 2 == 0]
        return polygons or None
    return None


def segmentation_mask(segm: Segmentation, height: int, width: int) -> np.ndarray:
    """Binary mask ``[height, width]`` bool of polygons or an RLE (image pixels)."""
    if isinstance(segm, dict):
        rle = compress_rle(segm)
        rle = {'size': rle['size'], 'counts': rle['counts'].encode('ascii')}
    else:
        rle = mask_utils.merge(mask_utils.frPyObjects(segm, height, width))
    return mask_utils.decode(rle).astype(bool)


def coco_instance(ann: Mapping,
                  category: str,
                  width: int,
                  height: int,
                  with_mask: bool = True) -> Tuple[Optional[Dict], Optional[str]]:
    """One record instance from a COCO annotation.

    Args:
        ann: the COCO annotation (``bbox`` xywh absolute pixels, ``segmentation``,
            optional ``keypoints``).
        category: the class name written to ``category``.
        width, height: the image size in pixels.
        with_mask: keep the segmentation (and require one).

    Returns:
        ``(instance, None)`` or ``(None, reason)`` naming why the annotation is unusable.
    """
    if ann.get('iscrowd', 0):
        return None, 'crowd annotation'
    bbox = clip_box(ann.get('bbox', (0, 0, 0, 0)), width, height)
    if bbox is None:
        return None, 'empty box'
    instance = {'bbox': bbox, 'category': category}
    if with_mask:
        segm = normalize_segmentation(ann.get('segmentation'), height, width)
        if segm is None:
            return None, 'no usable mask'
        instance['segmentation'] = segm
    if 'keypoints' in ann:
        instance['keypoints'] = [int(v) if float(v).is_integer() else float(v)
                                 for v in ann['keypoints']]
    return instance, None


def category_names(categories: Sequence[Mapping]) -> Dict[int, str]:
    """``{category id: name}`` of a COCO ``categories`` list."""
    return {int(cat['id']): str(cat['name']) for cat in categories}


def image_info(image: Mapping, id_prefix: str, path_prefix: str = '') -> ImageInfo:
    """The :class:`ImageInfo` of a COCO ``images`` entry (``id``, ``file_name``, size)."""
    return ImageInfo(id=f'{id_prefix}_{image["id"]}', path=path_prefix + image['file_name'],
                     width=int(image['width']), height=int(image['height']))


class ImageSizes:
    """Image sizes for sources that do not store them (LLaVA, VQAv2, POPE).

    Looked up, in order, by file name or image id in COCO-style ``images`` lists (any
    ``instances_*.json``), then by reading the header of ``image_root/path`` with PIL.

    Args:
        coco_files: COCO-style JSON files whose ``images`` entries give ``file_name``, ``id``,
            ``width`` and ``height``.
        image_root: folder the record's image paths are relative to.
    """

    def __init__(self, coco_files: Sequence[str] = (), image_root: Optional[str] = None) -> None:
        self.by_name: Dict[str, Tuple[int, int]] = {}
        self.by_id: Dict[int, Tuple[int, int]] = {}
        for path in coco_files:
            for image in load_json(path)['images']:
                size = (int(image['width']), int(image['height']))
                self.by_name[osp.basename(image['file_name'])] = size
                self.by_id[int(image['id'])] = size
        self.image_root = image_root

    def get(self, path: str, image_id: Optional[int] = None) -> Optional[Tuple[int, int]]:
        """``(width, height)`` of the image at ``path`` (relative to the root), or ``None``."""
        size = self.by_name.get(osp.basename(path))
        if size is None and image_id is not None:
            size = self.by_id.get(int(image_id))
        if size is None and self.image_root is not None:
            full = osp.join(self.image_root, path)
            if osp.isfile(full):
                with Image.open(full) as image:
                    size = image.size
        return size
