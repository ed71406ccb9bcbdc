"""Grounded conversation generation (GCG) renderers: a caption whose phrases are grounded with
boxes (``gcg_box``) or masks (``gcg_mask``), Flickr30k-Entities / GranD style."""
import random
from functools import partial
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from mmrefvlm.trp import compose_answer

from .common import ImageInfo, build_record, check_plain_text, pick_template

GCG_BOX_TEMPLATES = (
    'Please describe the image <image> and detect relevant bounding boxes.',
    '<image>Describe the image and give a bounding box for every object you mention.',
    'Write a caption for the picture <image> and ground each mentioned object with a box.',
    'Describe the image <image> briefly, localizing the objects you talk about.',
    'Can you describe the scene in the image <image> and provide boxes for the objects?',
    '<image>Give a grounded description of the image with bounding boxes.',
    'Explain what is in the image <image> and box each object you refer to.',
    'Provide a caption of the photo <image> with bounding boxes for its phrases.',
    'Tell me about the image <image>, and mark the mentioned objects with boxes.',
    'Describe the setting of the image <image> and offer boxes for each visible object.',
    '<image>Caption this image and detect the objects in the caption.',
    'Summarize the picture <image> and ground the described objects with bounding boxes.',
    'What is happening in the image <image>? Include a box for every object you name.',
    'Describe the content of the image <image> and locate every object you mention.',
    'Generate a grounded caption for the image <image> using bounding boxes.',
    '<image>Describe what you see and link each phrase to a bounding box.',
    'Give a detailed description of the picture <image> with boxes for the key objects.',
    'Please narrate the image <image> and detect the objects you describe.',
    'Write a sentence about the image <image>, grounding its objects with boxes.',
    'Look at the image <image>, describe it, and provide bounding boxes for the objects.',
    'Describe the image <image> and point out each mentioned item with a box.',
)

GCG_MASK_TEMPLATES = (
    'Describe the setting of the image <image> and offer masks for each visible object.',
    'Please describe the image <image> and segment the relevant objects.',
    '<image>Describe the image and give a mask for every object you mention.',
    'Write a caption for the picture <image> and ground each mentioned object with a mask.',
    'Describe the image <image> briefly, segmenting the objects you talk about.',
    'Can you describe the scene in the image <image> and provide masks for the objects?',
    '<image>Give a grounded description of the image with segmentation masks.',
    'Explain what is in the image <image> and segment each object you refer to.',
    'Provide a caption of the photo <image> with masks for its phrases.',
    'Tell me about the image <image>, and mark the mentioned objects with masks.',
    '<image>Caption this image and segment the objects in the caption.',
    'Summarize the picture <image> and ground the described objects with masks.',
    'What is happening in the image <image>? Include a mask for every object you name.',
    'Describe the content of the image <image> and segment every object you mention.',
    'Generate a grounded caption for the image <image> using segmentation masks.',
    '<image>Describe what you see and link each phrase to a mask.',
    'Give a detailed description of the picture <image> with masks for the key objects.',
    'Please narrate the image <image> and segment the objects you describe.',
    'Write a sentence about the image <image>, grounding its objects with masks.',
    'Look at the image <image>, describe it, and provide segmentation masks for the objects.',
    'Describe the image <image> and outline each mentioned item with a mask.',
)

TEMPLATES = {'gcg_box': GCG_BOX_TEMPLATES, 'gcg_mask': GCG_MASK_TEMPLATES}
_UNITS = {'gcg_box': 'box', 'gcg_mask': 'mask'}

Segment = Union[str, Tuple[str, Sequence[int]]]


def segments_from_spans(caption: str,
                        spans: Sequence[Tuple[int, int, Sequence[int]]]) -> List[Segment]:
    """Cut ``caption`` into plain text and grounded phrases.

    Args:
        caption: the plain caption.
        spans: ``(start, end, targets)`` character spans of grounded phrases (end exclusive,
            non-overlapping) with the instance indices each one refers to.

    Returns:
        Segments for :func:`render_gcg`: ``['A ', ('dog', [0]), ' on ', ('grass', [1]), '.']``.
    """
    segments: List[Segment] = []
    cursor = 0
    for start, end, targets in sorted(spans, key=lambda span: span[0]):
        if start < cursor or end <= start or end > len(caption):
            raise ValueError(f'segments_from_spans: span ({start}, {end}) overlaps another '
                             f'or lies outside the caption of length {len(caption)}')
        if start > cursor:
            segments.append(caption[cursor:start])
        segments.append((caption[start:end], list(targets)))
        cursor = end
    if cursor < len(caption):
        segments.append(caption[cursor:])
    return segments


def render_gcg(task: str,
               image: ImageInfo,
               instances: Sequence[Mapping],
               segments: Sequence[Segment],
               rng: random.Random,
               record_id: Optional[str] = None) -> Dict:
    """A GCG record: the caption with each grounded phrase turned into a triplet.

    Args:
        task: ``'gcg_box'`` or ``'gcg_mask'`` (selects the unit).
        instances: COCO-style instances of the image.
        segments: plain strings and ``(phrase, targets)`` pairs, in caption order; a phrase
            with several targets gives a one-to-many triplet.

    Returns:
        The record; ``refs`` lists the targets of every phrase in caption order.
    """
    if task not in TEMPLATES:
        raise ValueError(f'render_gcg: task must be one of {sorted(TEMPLATES)}, got {task!r}')
    parts: List = []
    refs: List[int] = []
    for segment in segments:
        if isinstance(segment, str):
            check_plain_text(segment, f'{task} caption text')
            parts.append(segment)
            continue
        phrase, targets = segment
        check_plain_text(phrase, f'{task} phrase')
        if not targets:
            raise ValueError(f'{task}: grounded phrase {phrase!r} has no target instance')
        parts.append((phrase, _UNITS[task], len(targets)))
        refs.extend(targets)
    human = pick_template(task, TEMPLATES[task], rng)
    return build_record(task, image, instances, human, compose_answer(parts), refs=refs,
                        record_id=record_id)


render_gcg_box = partial(render_gcg, 'gcg_box')
render_gcg_mask = partial(render_gcg, 'gcg_mask')
