"""Interactive-grounding renderers: a visual prompt in, the prompted object's box / mask /
keypoints out (COCO-Interactive style)."""
import random
from functools import partial
from typing import Dict, List, Mapping, Optional, Sequence

from mmrefvlm.trp import compose_answer

from .common import ImageInfo, build_record, check_plain_text, pick_template, regions_text

IG_BOX_TEMPLATES = (
    'Please generate a bounding box based on the region <region> in the image <image>.',
    'Detect the object indicated by <region> in the image <image>.',
    '<image>Give the bounding box of the object marked by <region>.',
    'What is the bounding box of the object at <region> in the picture <image>?',
    'Locate the object referred to by <region> in the image <image> with a box.',
    'In the image <image>, draw a box around the object at <region>.',
    'Find the full extent of the object marked with <region> in the image <image> as a box.',
    '<image>Output a box for the thing highlighted by <region>.',
    'Please box the object that <region> points to in the photo <image>.',
    'Which object does <region> indicate in the image <image>? Give its bounding box.',
    'Based on the visual prompt <region>, detect the object in the picture <image>.',
    'Turn the prompt <region> into a bounding box for the image <image>.',
    'Provide the box coordinates of the object selected by <region> in the image <image>.',
    '<image>Using <region> as a hint, give the bounding box of the object.',
    'Identify the object at <region> in the image <image> and return its bounding box.',
    'Here is an image <image> with a marked region <region>. Box the object it belongs to.',
    'Ground the object marked by <region> in the image <image> with a bounding box.',
    'Give me a box around whatever is at <region> in the picture <image>.',
    'Return the bounding box of the instance selected by <region> in the image <image>.',
    '<image>Detect the instance at <region>.',
    'Expand the region <region> in the image <image> into a bounding box of its object.',
)

IG_MASK_TEMPLATES = (
    'Please generate a mask based on the region <region> in the image <image>.',
    'Segment the object indicated by <region> in the image <image>.',
    '<image>Give the mask of the object marked by <region>.',
    'What is the segmentation mask of the object at <region> in the picture <image>?',
    'Segment the object referred to by <region> in the image <image>.',
    'In the image <image>, produce a mask for the object at <region>.',
    'Find the full extent of the object marked with <region> in the image <image> as a mask.',
    '<image>Output a mask for the thing highlighted by <region>.',
    'Please segment the object that <region> points to in the photo <image>.',
    'Which object does <region> indicate in the image <image>? Give its mask.',
    'Based on the visual prompt <region>, segment the object in the picture <image>.',
    'Turn the prompt <region> into a segmentation mask for the image <image>.',
    'Provide the pixel mask of the object selected by <region> in the image <image>.',
    '<image>Using <region> as a hint, segment the object.',
    'Identify the object at <region> in the image <image> and return its mask.',
    'Here is an image <image> with a marked region <region>. Segment the object it belongs to.',
    'Ground the object marked by <region> in the image <image> with a mask.',
    'Give me a mask of whatever is at <region> in the picture <image>.',
    'Return the segmentation of the instance selected by <region> in the image <image>.',
    '<image>Segment the instance at <region>.',
    'Expand the region <region> in the image <image> into a mask of its object.',
)

IG_KEYPOINT_TEMPLATES = (
    'Please detect the keypoints of the object at the region <region> in the image <image>.',
    'Visualize the keypoints of the instance indicated by <region> in the image <image>.',
    '<image>Give the keypoints of the object marked by <region>.',
    'What are the keypoints of the object at <region> in the picture <image>?',
    'Locate the keypoints of the instance referred to by <region> in the image <image>.',
    'In the image <image>, find all keypoints of the object at <region>.',
    '<image>Output the keypoints for the thing highlighted by <region>.',
    'Please estimate the pose of the object that <region> points to in the photo <image>.',
    'Which keypoints does the instance at <region> have in the image <image>?',
    'Based on the visual prompt <region>, detect the keypoints in the picture <image>.',
    'Turn the prompt <region> into keypoints of its object in the image <image>.',
    'Provide the keypoint locations of the instance selected by <region> in the image <image>.',
    '<image>Using <region> as a hint, mark the keypoints of the object.',
    'Identify the object at <region> in the image <image> and return its keypoints.',
    'Here is an image <image> with a marked region <region>. Find the keypoints of that object.',
    'Ground the keypoints of the object marked by <region> in the image <image>.',
    'Show me the keypoints of whatever is at <region> in the picture <image>.',
    'Return the keypoints of the instance selected by <region> in the image <image>.',
    '<image>Detect the keypoints of the instance at <region>.',
    'Estimate the keypoint positions of the object at <region> in the image <image>.',
    'For the object marked by <region> in the image <image>, visualize its keypoints.',
)

TEMPLATES = {
    'ig_box': IG_BOX_TEMPLATES,
    'ig_mask': IG_MASK_TEMPLATES,
    'ig_keypoint': IG_KEYPOINT_TEMPLATES,
}
_UNITS = {'ig_box': 'box', 'ig_mask': 'mask', 'ig_keypoint': 'keypoint'}


def render_interactive(task: str,
                       image: ImageInfo,
                       instances: Sequence[Mapping],
                       prompts: Sequence[Mapping],
                       targets: Sequence[int],
                       rng: random.Random,
                       phrases: Optional[Sequence[str]] = None,
                       record_id: Optional[str] = None) -> Dict:
    """An interactive-grounding record: one triplet per visual prompt, in prompt order.

    Args:
        task: ``'ig_box'``, ``'ig_mask'`` or ``'ig_keypoint'`` (selects the unit).
        instances: COCO-style instances of the image.
        prompts: visual prompt dicts, one per target (``<region>`` order).
        targets: index into ``instances`` of the object each prompt marks.
        phrases: the answer phrase of each target; defaults to the targets' ``category``.

    Returns:
        The record; its answer is ``'<Phrase>cat</Phrase>(<Unit>mask</Unit>[0]<REF>), ...'``.
    """
    if task not in TEMPLATES:
        raise ValueError(f'render_interactive: task must be one of {sorted(TEMPLATES)}, '
                         f'got {task!r}')
    if len(prompts) != len(targets) or not targets:
        raise ValueError(f'{task}: need one prompt per target, got {len(prompts)} prompts and '
                         f'{len(targets)} targets')
    if phrases is None:
        phrases = [instances[i]['category'] for i in targets]
    parts: List = []
    for phrase in phrases:
        check_plain_text(phrase, f'{task} phrase')
        if parts:
            parts.append(', ')
        parts.append((phrase, _UNITS[task], 1))
    human = pick_template(task, TEMPLATES[task], rng).replace('<region>',
                                                             regions_text(len(prompts)))
    return build_record(task, image, instances, human, compose_answer(parts), refs=targets,
                        prompts=prompts, record_id=record_id)


render_ig_box = partial(render_interactive, 'ig_box')
render_ig_mask = partial(render_interactive, 'ig_mask')
render_ig_keypoint = partial(render_interactive, 'ig_keypoint')
