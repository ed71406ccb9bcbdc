"""Referring-expression renderers: REC (box), RES (mask) and REG (description of a prompt).

REC/RES answer with one triplet whose phrase is the expression and which carries one ``<REF>``
per target (several targets give a one-to-many triplet, as in gRefCOCO).
"""
import random
from typing import Dict, Mapping, Optional, Sequence

from mmrefvlm.trp import compose_answer

from .common import ImageInfo, build_record, check_plain_text, pick_template

REC_TEMPLATES = (
    'What are the coordinates of {expr} in the image <image>?',
    'Where is {expr} in the image <image>? Please give its bounding box.',
    'Please detect {expr} in the image <image>.',
    '<image>Locate {expr} with a bounding box.',
    'In the picture <image>, find {expr} and output its box.',
    'Can you point out {expr} in the image <image> with a bounding box?',
    'Give the bounding box of {expr} in the image <image>.',
    '<image>Where can I find {expr}? Answer with a box.',
    'Detect the region described by "{expr}" in the picture <image>.',
    'Help me localize {expr} in the image <image>.',
    'Show me where {expr} is in the image <image> using a bounding box.',
    'Identify the location of {expr} in the picture <image>.',
    '<image>Please provide the bounding box for {expr}.',
    'Find {expr} in the photo <image>.',
    'Which region of the image <image> does "{expr}" refer to? Give a box.',
    'Draw a bounding box around {expr} in the image <image>.',
    'Output the box coordinates of {expr} shown in the image <image>.',
    'In the given image <image>, where is {expr} located?',
    '<image>Ground the expression "{expr}" with a bounding box.',
    'I am looking for {expr} in this image <image>. Where is it?',
    'Mark {expr} in the image <image> with a box.',
    'Could you box {expr} in the picture <image>?',
)

RES_TEMPLATES = (
    'Provide a segmentation mask for {expr} in the picture <image>.',
    'Please segment {expr} in the image <image>.',
    '<image>Segment {expr}.',
    'Can you generate a mask for {expr} in the image <image>?',
    'Give me the mask of {expr} in the picture <image>.',
    'What is the segmentation of {expr} in the image <image>?',
    '<image>Please output a mask covering {expr}.',
    'In the image <image>, segment the region described by "{expr}".',
    'Produce a pixel-wise mask of {expr} in the image <image>.',
    'Highlight {expr} in the picture <image> with a mask.',
    'Where exactly is {expr} in the image <image>? Answer with a segmentation mask.',
    'Create a segmentation mask that outlines {expr} in the image <image>.',
    '<image>Mask out {expr}.',
    'Could you segment {expr} shown in the photo <image>?',
    'Find {expr} in the image <image> and give its mask.',
    'Delineate {expr} in the picture <image>.',
    'Please provide the mask of the object referred to as "{expr}" in the image <image>.',
    'Segment the area corresponding to {expr} in this image <image>.',
    '<image>I need a segmentation of {expr}.',
    'Output a mask for {expr} visible in the image <image>.',
    'Show the exact shape of {expr} in the image <image> with a mask.',
    'Separate {expr} from the rest of the picture <image> with a mask.',
)

REG_TEMPLATES = (
    'For the given image <image>, can you provide a unique description of the area <region>?',
    'Please describe the region <region> in the image <image>.',
    '<image>What is in the area <region>?',
    'Give a short description of the object at <region> in the picture <image>.',
    'What does the region <region> of the image <image> show?',
    'In the image <image>, describe <region> so that it can be told apart from the rest.',
    '<image>Can you describe the object marked by <region>?',
    'Provide a referring expression for the region <region> in the image <image>.',
    'What object is located at <region> in the picture <image>?',
    'Tell me about the area <region> in the image <image>.',
    'Describe the content of <region> in the photo <image> in a few words.',
    '<image>Write a unique description of <region>.',
    'Look at <region> in the image <image>. What is it?',
    'How would you refer to the object in <region> of the image <image>?',
    'Please give a distinctive description of the region <region> in the picture <image>.',
    'Identify the thing marked by <region> in the image <image>.',
    'Explain what <region> shows in the image <image>.',
    'For the image <image>, describe the marked area <region> briefly.',
    '<image>Name and describe the object at <region>.',
    'What can you tell me about the region <region> of this image <image>?',
    'Generate an expression that uniquely describes <region> in the image <image>.',
)

TEMPLATES = {'rec': REC_TEMPLATES, 'res': RES_TEMPLATES, 'reg': REG_TEMPLATES}


def _render_grounding(task: str, templates: Sequence[str], unit: str, image: ImageInfo,
                      instances: Sequence[Mapping], expression: str, targets: Sequence[int],
                      rng: random.Random, record_id: Optional[str]) -> Dict:
    if not targets:
        raise ValueError(f'{task}: expression {expression!r} has no target instance')
    human = pick_template(task, templates, rng, expr=expression)
    answer = compose_answer([(expression, unit, len(targets))])
    return build_record(task, image, instances, human, answer, refs=targets, record_id=record_id)


def render_rec(image: ImageInfo,
               instances: Sequence[Mapping],
               expression: str,
               targets: Sequence[int],
               rng: random.Random,
               record_id: Optional[str] = None) -> Dict:
    """A REC record: find ``expression``, answered with a box triplet.

    Args:
        instances: COCO-style instances of the image.
        expression: the referring expression ('the man on the left'), also the answer phrase.
        targets: indices into ``instances`` the expression refers to (one or more).
    """
    return _render_grounding('rec', REC_TEMPLATES, 'box', image, instances, expression, targets,
                             rng, record_id)


def render_res(image: ImageInfo,
               instances: Sequence[Mapping],
               expression: str,
               targets: Sequence[int],
               rng: random.Random,
               record_id: Optional[str] = None) -> Dict:
    """A RES record: segment ``expression``, answered with a mask triplet (see ``render_rec``)."""
    return _render_grounding('res', RES_TEMPLATES, 'mask', image, instances, expression, targets,
                             rng, record_id)


def render_reg(image: ImageInfo,
               instances: Sequence[Mapping],
               prompt: Mapping,
               description: str,
               rng: random.Random,
               record_id: Optional[str] = None) -> Dict:
    """A REG record: describe the region given by ``prompt``; the answer is ``description``.

    Args:
        prompt: a visual prompt dict (``{'type': 'point'|'box'|'scribble'|'mask', 'data': ...}``).
        description: plain text that describes the prompted region uniquely.
    """
    check_plain_text(description, 'reg description')
    human = pick_template('reg', REG_TEMPLATES, rng)
    return build_record('reg', image, instances, human, description, prompts=[prompt],
                        record_id=record_id)
