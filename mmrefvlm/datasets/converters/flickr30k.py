"""Flickr30k-Entities (``Sentences/*.txt`` + ``Annotations/*.xml``) → ``gcg_box`` records.

A sentence marks its phrases ``[/EN#18/people A man]`` (entity 18, type ``people``; an entity may
have several types, ``/EN#5/people/bodyparts``); the image's XML lists boxes
(``<object><name>18</name><bndbox><xmin>…``), one ``<object>`` per box, an object naming every
entity it belongs to. One record per sentence: the sentence without markup, every phrase whose
entity has a box grounded to all of that entity's boxes (one-to-many when several), the others
left as plain text. Boxes are read as pixel corners, ``[xmin, ymin, xmax - xmin, ymax - ymin]``
(as MMDetection's ``XMLDataset``), and clipped to the image.
"""
import os
import os.path as osp
import re
import xml.etree.ElementTree as ET
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from ..renderers import ImageInfo, render_gcg_box, segments_from_spans
from .coco_annotations import clip_box
from .output import ConversionSummary, record_rng

_PHRASE = re.compile(r'\[/EN#(\d+)((?:/[^\s\]]+)*)\s+([^\]]*)\]')


def parse_sentence(line: str) -> Tuple[str, List[Tuple[int, int, str, str]]]:
    """Strip the entity markup of one annotated sentence.

    Returns:
        ``(caption, phrases)`` with ``phrases = [(start, end, entity_id, type), ...]`` character
        spans into ``caption`` (end exclusive); ``type`` is the first listed type.
    """
    caption, phrases, cursor = [], [], 0
    length = 0
    for match in _PHRASE.finditer(line):
        plain = line[cursor:match.start()]
        caption.append(plain)
        length += len(plain)
        phrase = match.group(3).strip()
        types = [t for t in match.group(2).split('/') if t]
        phrases.append((length, length + len(phrase), match.group(1), types[0] if types else ''))
        caption.append(phrase)
        length += len(phrase)
        cursor = match.end()
    caption.append(line[cursor:])
    return ''.join(caption), phrases


def parse_annotation(path: str) -> Tuple[int, int, Dict[str, List[List[float]]]]:
    """``(width, height, {entity id: [[xmin, ymin, xmax, ymax], ...]})`` of one XML file."""
    root = ET.parse(path).getroot()
    size = root.find('size')
    if size is None:
        raise ValueError(f'{path}: no <size> element')
    width, height = int(size.findtext('width')), int(size.findtext('height'))
    boxes: Dict[str, List[List[float]]] = {}
    for obj in root.iter('object'):
        bndbox = obj.find('bndbox')
        if bndbox is None:
            continue
        corners = [float(bndbox.findtext(key)) for key in ('xmin', 'ymin', 'xmax', 'ymax')]
        for name in obj.iter('name'):
            boxes.setdefault(name.text.strip(), []).append(corners)
    return width, height, boxes


def _image_ids(root: str, split_file: Optional[str]) -> List[str]:
    if split_file is not None:
        with open(split_file, encoding='utf-8') as f:
            return [line.strip() for line in f if line.strip()]
    return sorted(osp.splitext(name)[0] for name in os.listdir(osp.join(root, 'Sentences'))
                  if name.endswith('.txt'))


def convert_flickr30k(root: str,
                      summary: ConversionSummary,
                      split_file: Optional[str] = None,
                      seed: int = 0,
                      id_prefix: str = 'flickr30k',
                      image_prefix: str = 'flickr30k-images/',
                      progress: Callable[[Iterable], Iterable] = iter) -> Iterator[Dict]:
    """Yield one ``gcg_box`` record per sentence of Flickr30k-Entities.

    Args:
        root: folder with ``Sentences/`` and ``Annotations/``.
        summary: counts skipped images, sentences and boxes (per reason).
        split_file: a ``train.txt``/``val.txt``/``test.txt`` of image ids (default: every
            sentence file).
        seed: template choice.
        id_prefix: record ids are ``'{id_prefix}_{image id}_{sentence index}'``.
        image_prefix: the record's ``image`` is ``'{image_prefix}{image id}.jpg'``.
        progress: wraps the image loop (e.g. ``tqdm``).
    """
    for image_id in progress(_image_ids(root, split_file)):
        sentence_file = osp.join(root, 'Sentences', f'{image_id}.txt')
        xml_file = osp.join(root, 'Annotations', f'{image_id}.xml')
        if not (osp.isfile(sentence_file) and osp.isfile(xml_file)):
            summary.skip('image without a sentence or an annotation file')
            continue
        width, height, corners = parse_annotation(xml_file)
        info = ImageInfo(id=f'{id_prefix}_{image_id}', path=f'{image_prefix}{image_id}.jpg',
                         width=width, height=height)
        with open(sentence_file, encoding='utf-8') as f:
            lines = [line.strip() for line in f]
        for index, line in enumerate(lines):
            if not line:
                continue
            record = _sentence_record(info, line, corners, summary,
                                      record_rng(seed, info.id, index),
                                      f'{info.id}_{index}')
            if record is not None:
                yield record


def _sentence_record(info: ImageInfo, line: str, corners: Dict[str, List[List[float]]],
                     summary: ConversionSummary, rng, record_id: str) -> Optional[Dict]:
    caption, phrases = parse_sentence(line)
    instances: List[Dict] = []
    index_of: Dict[tuple, int] = {}
    spans = []
    for start, end, entity, kind in phrases:
        targets = []
        for x1, y1, x2, y2 in corners.get(entity, []):
            bbox = clip_box([x1, y1, x2 - x1, y2 - y1], info.width, info.height)
            if bbox is None:
                summary.skip('empty box')
                continue
            key = tuple(bbox)  # a box shared by two entities is one instance
            if key not in index_of:
                index_of[key] = len(instances)
                instances.append({'bbox': bbox, 'category': kind or 'other'})
            targets.append(index_of[key])
        if targets and end > start:
            spans.append((start, end, targets))
    if not spans:
        summary.skip('sentence without a grounded phrase')
        return None
    return render_gcg_box(info, instances, segments_from_spans(caption, spans), rng,
                          record_id=record_id)
