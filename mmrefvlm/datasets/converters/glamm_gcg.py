"""GLaMM GCG annotations (GranD-f style JSON) → ``gcg_mask`` records.

The file is a list of entries (GLaMM's ``GranDf_gcg_ds.py``)::

    {"file_name": "x.jpg", "caption": "A man rides a horse.",
     "groundings": {"A man": {"token_positives": [0, 5], "rle_masks": [RLE, ...]}, ...}}

``token_positives`` is a character span ``[start, end)`` of ``caption``; each RLE of a phrase
becomes one instance (a phrase with several masks gives a one-to-many triplet; GLaMM itself
merges them into one mask). The image size is the RLE ``size``; when no mask has one, it is read
from ``image_root``. Boxes are the masks' tight boxes (``pycocotools.mask.toBbox``).
"""
import os.path as osp
from typing import Callable, Dict, Iterable, Iterator, List, Optional

from pycocotools import mask as mask_utils

from ..renderers import ImageInfo, render_gcg_mask, segments_from_spans
from .coco_annotations import ImageSizes, compress_rle, load_json
from .output import ConversionSummary, record_rng


def _image_size(entry: Dict, sizes: ImageSizes) -> Optional[tuple]:
    """``(width, height)`` from the first RLE of the entry, else from the image file."""
    for grounding in entry.get('groundings', {}).values():
        for rle in grounding.get('rle_masks', []):
            height, width = rle['size']
            return int(width), int(height)
    return sizes.get(entry['file_name'])


def _mask_instance(rle: Dict, phrase: str, info: ImageInfo) -> Optional[Dict]:
    """An instance from one RLE, or ``None`` when its size is wrong or it is empty."""
    rle = compress_rle(rle)
    if rle['size'] != [info.height, info.width]:
        return None
    encoded = {'size': rle['size'], 'counts': rle['counts'].encode('ascii')}
    if mask_utils.area(encoded) == 0:
        return None
    bbox = [float(v) for v in mask_utils.toBbox(encoded)]
    return {'bbox': bbox, 'segmentation': rle, 'category': phrase}


def convert_glamm_gcg(ann_file: str,
                      summary: ConversionSummary,
                      seed: int = 0,
                      image_root: Optional[str] = None,
                      id_prefix: str = 'glamm_gcg',
                      image_prefix: str = '',
                      progress: Callable[[Iterable], Iterable] = iter) -> Iterator[Dict]:
    """Yield one ``gcg_mask`` record per entry of a GLaMM GCG annotation file.

    Args:
        ann_file: the GCG JSON (a list of entries, see the module docstring).
        summary: counts skipped entries, phrases and masks (per reason).
        seed: template choice.
        image_root: where images are, to read the size of an entry without masks.
        id_prefix: record ids are ``'{id_prefix}_{entry index}_{file stem}'``.
        image_prefix: prepended to ``file_name`` for the record's ``image``.
        progress: wraps the entry loop (e.g. ``tqdm``).
    """
    entries = load_json(ann_file)
    if not isinstance(entries, list):
        raise ValueError(f'{ann_file}: expected a list of GCG entries')
    sizes = ImageSizes(image_root=image_root)
    for index, entry in enumerate(progress(entries)):
        size = _image_size(entry, sizes)
        if size is None:
            summary.skip('entry of unknown image size')
            continue
        stem = osp.splitext(osp.basename(entry['file_name']))[0]
        info = ImageInfo(id=f'{id_prefix}_{index}_{stem}', path=image_prefix + entry['file_name'],
                         width=size[0], height=size[1])
        caption = entry.get('caption', '')
        instances: List[Dict] = []
        spans = []
        for phrase, grounding in entry.get('groundings', {}).items():
            start, end = (int(v) for v in grounding['token_positives'])
            if not 0 <= start < end <= len(caption):
                summary.skip('phrase span outside the caption')
                continue
            targets = []
            for rle in grounding.get('rle_masks', []):
                instance = _mask_instance(rle, caption[start:end], info)
                if instance is None:
                    summary.skip('empty mask or mask of another size')
                    continue
                targets.append(len(instances))
                instances.append(instance)
            if targets:
                spans.append((start, end, targets))
            else:
                summary.skip('phrase without a usable mask')
        if not spans:
            summary.skip('entry without a grounded phrase')
            continue
        try:
            segments = segments_from_spans(caption, spans)
        except ValueError:
            summary.skip('entry with overlapping phrase spans')
            continue
        yield render_gcg_mask(info, instances, segments, record_rng(seed, info.id),
                              record_id=info.id)
