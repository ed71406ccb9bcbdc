"""COCO-Interactive (PSALM's ``coco_interactive_{train,val}_psalm.json``) → ``ig_box``/``ig_mask``.

The file is a list of images (PSALM ``datasets/bulid_COCO_Interactivate.py``)::

    {"image": "000000000139.jpg", "image_info": {COCO image entry}, "new_img_id": 0,
     "anns": [{COCO annotation, "point_visual_prompt_mask": RLE, "mask_visual_prompt_mask": RLE,
               "box_visual_prompt_mask": RLE, "scribble_visual_prompt_mask": RLE}, ...]}

Each ``*_visual_prompt_mask`` is the prompt drawn as a binary mask. It becomes a prompt of our
format: ``point`` → the first set pixel ``[x, y]``; ``box`` → the tight box of the mask;
``scribble`` → a polyline through the drawn pixels ordered along the stroke's longer axis
(at most ``MAX_SCRIBBLE_POINTS`` points); ``mask`` → the RLE itself. One record per annotation,
task and prompt type; the record's only instance is the annotation, and ``prompts[0].type``
records the prompt type (also in the id). PSALM's file has no category names: they come from
any COCO ``instances_*.json``.
"""
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence

import numpy as np

from ..renderers import PROMPT_TYPES, ImageInfo, mask_bbox, render_ig_box, render_ig_mask
from .coco_annotations import (category_names, coco_instance, compress_rle, load_json,
                               segmentation_mask)
from .output import ConversionSummary, record_rng

INTERACTIVE_TASKS = ('ig_box', 'ig_mask')
MAX_SCRIBBLE_POINTS = 8
_RENDERERS = {'ig_box': render_ig_box, 'ig_mask': render_ig_mask}


def scribble_polyline(mask: np.ndarray, max_points: int = MAX_SCRIBBLE_POINTS) -> List[List[int]]:
    """A polyline ``[[x, y], ...]`` through the pixels of a drawn stroke ``mask [H, W]``.

    The pixels are ordered along the longer side of their extent (PSALM draws a stroke between
    two opposite corners of a box) and ``max_points`` of them are kept, evenly spaced.
    """
    rows, cols = np.nonzero(mask)
    if np.ptp(cols) >= np.ptp(rows):
        order = np.lexsort((rows, cols))
    else:
        order = np.lexsort((cols, rows))
    picks = np.unique(np.linspace(0, len(order) - 1, min(max_points, len(order))).round())
    line = [[int(cols[order[i]]), int(rows[order[i]])] for i in picks.astype(int)]
    if len(line) == 1:  # a one-pixel stroke: repeat it, a polyline needs two points
        line.append(line[0])
    return line


def prompt_from_mask(kind: str, rle: Dict, info: ImageInfo) -> Optional[Dict]:
    """Our prompt dict from one PSALM prompt mask; ``None`` when it is empty or mis-sized."""
    rle = compress_rle(rle)
    if rle['size'] != [info.height, info.width]:
        return None
    mask = segmentation_mask(rle, info.height, info.width)
    if not mask.any():
        return None
    if kind == 'point':
        rows, cols = np.nonzero(mask)
        data = [int(cols[0]), int(rows[0])]
    elif kind == 'box':
        data = mask_bbox(mask)
    elif kind == 'scribble':
        data = scribble_polyline(mask)
    else:
        data = rle
    return {'type': kind, 'data': data}


def convert_coco_interactive(ann_file: str,
                             categories_file: str,
                             summary: ConversionSummary,
                             tasks: Sequence[str] = INTERACTIVE_TASKS,
                             prompt_types: Sequence[str] = PROMPT_TYPES,
                             seed: int = 0,
                             id_prefix: str = 'coco_interactive',
                             image_prefix: str = '',
                             progress: Callable[[Iterable], Iterable] = iter) -> Iterator[Dict]:
    """Yield ``ig_box`` / ``ig_mask`` records of a COCO-Interactive file.

    Args:
        ann_file: PSALM's ``coco_interactive_*_psalm.json``.
        categories_file: a COCO JSON whose ``categories`` name the ``category_id``s.
        summary: counts skipped annotations and prompts (per reason).
        tasks: any of ``'ig_box', 'ig_mask'``.
        prompt_types: which of PSALM's four prompt masks to convert.
        seed: template choice.
        id_prefix: record ids are ``'{id_prefix}_{image id}_{ann id}_{prompt type}_{task}'``.
        image_prefix: prepended to ``image`` for the record's ``image``.
        progress: wraps the image loop (e.g. ``tqdm``).
    """
    unknown = set(tasks) - set(INTERACTIVE_TASKS)
    if unknown:
        raise ValueError(f'coco interactive: unknown tasks {sorted(unknown)}; '
                         f'choose from {", ".join(INTERACTIVE_TASKS)}')
    if set(prompt_types) - set(PROMPT_TYPES) or not prompt_types:
        raise ValueError(f'coco interactive: prompt types must be among {PROMPT_TYPES}, got '
                         f'{list(prompt_types)}')
    names = category_names(load_json(categories_file)['categories'])
    entries = load_json(ann_file)
    for entry in progress(entries):
        meta = entry['image_info']
        info = ImageInfo(id=f'{id_prefix}_{meta["id"]}', path=image_prefix + entry['image'],
                         width=int(meta['width']), height=int(meta['height']))
        for ann in entry['anns']:
            instance, reason = coco_instance(ann, names[ann['category_id']], info.width,
                                             info.height)
            if reason:
                summary.skip(f'annotation skipped: {reason}')
                continue
            for kind in prompt_types:
                rle = ann.get(f'{kind}_visual_prompt_mask')
                prompt = None if rle is None else prompt_from_mask(kind, rle, info)
                if prompt is None:
                    summary.skip(f'missing or empty {kind} prompt mask', len(tasks))
                    continue
                for task in tasks:
                    record_id = f'{info.id}_{ann["id"]}_{kind}_{task}'
                    target = instance if task == 'ig_mask' else {
                        'bbox': instance['bbox'], 'category': instance['category']}
                    yield _RENDERERS[task](info, [target], [prompt], [0],
                                           record_rng(seed, record_id), record_id=record_id)
