"""Open-vocabulary identification renderers.

``ovd``/``ovs`` offer a class list in the prompt; ``fovd``/``fovs`` (freeform, paper App. E) do
not. Answers list one triplet per present category with one ``<REF>`` per instance; categories
follow the offered class order (ovd/ovs) or sorted names (fovd/fovs).
"""
import random
from functools import partial
from typing import Dict, Mapping, Optional, Sequence

from .common import ImageInfo, build_record, check_plain_text, detection_answer, pick_template

OVD_TEMPLATES = (
    'Please detect {classes} in the image <image>.',
    '<image>Find all instances of {classes} and give their bounding boxes.',
    'Detect every object belonging to these categories in the image <image>: {classes}.',
    'In the picture <image>, locate all {classes} with bounding boxes.',
    'Which of the following can you find in the image <image>: {classes}? Give boxes.',
    '<image>Give bounding boxes for all objects of the classes {classes}.',
    'Search the image <image> for {classes} and box each one.',
    'Categories: {classes}. Detect them in the image <image>.',
    'Please output boxes of all {classes} that appear in the photo <image>.',
    'Run object detection on the image <image> for the classes {classes}.',
    'Draw bounding boxes around every {classes} in the image <image>.',
    '<image>Detect the following objects: {classes}.',
    'Using the class list {classes}, detect the objects in the picture <image>.',
    'Locate each instance of {classes} in this image <image>.',
    'Can you detect {classes} in the image <image>?',
    'Find and box all the {classes} present in the image <image>.',
    'Given the categories {classes}, mark every matching object in the image <image> with a box.',
    'Identify all {classes} in the picture <image> and provide their bounding boxes.',
    '<image>Which {classes} are there? Answer with bounding boxes.',
    'Detect objects of the types {classes} in the image <image>.',
    'Look for {classes} in the image <image> and output a box for each.',
)

OVS_TEMPLATES = (
    'Please segment {classes} in the image <image>.',
    '<image>Find all instances of {classes} and give their masks.',
    'Segment every object belonging to these categories in the image <image>: {classes}.',
    'In the picture <image>, segment all {classes}.',
    'Which of the following can you find in the image <image>: {classes}? Give masks.',
    '<image>Give segmentation masks for all objects of the classes {classes}.',
    'Search the image <image> for {classes} and segment each one.',
    'Categories: {classes}. Segment them in the image <image>.',
    'Please output masks of all {classes} that appear in the photo <image>.',
    'Run instance segmentation on the image <image> for the classes {classes}.',
    'Draw masks over every {classes} in the image <image>.',
    '<image>Segment the following objects: {classes}.',
    'Using the class list {classes}, segment the objects in the picture <image>.',
    'Produce a mask for each instance of {classes} in this image <image>.',
    'Can you segment {classes} in the image <image>?',
    'Find and segment all the {classes} present in the image <image>.',
    'Given the categories {classes}, mask every matching object in the image <image>.',
    'Identify all {classes} in the picture <image> and provide their masks.',
    '<image>Which {classes} are there? Answer with segmentation masks.',
    'Segment objects of the types {classes} in the image <image>.',
    'Look for {classes} in the image <image> and output a mask for each.',
)

FOVD_TEMPLATES = (
    'Please detect bounding boxes in the image <image>.',
    'Please detect the objects in the image <image>.',
    '<image>Detect all objects and give their bounding boxes.',
    'Find every object in the picture <image> and box it.',
    'What objects are in the image <image>? Provide bounding boxes.',
    '<image>Locate all the objects you can see with bounding boxes.',
    'Run object detection on the image <image>.',
    'Draw a bounding box around each object in the image <image>.',
    'Identify and localize all objects in the photo <image>.',
    'Detect everything in the image <image> and name each object.',
    '<image>List the objects in the image with their boxes.',
    'Please find all objects in this picture <image> and give their locations as boxes.',
    'Which objects appear in the image <image>? Mark them with bounding boxes.',
    'Perform open-vocabulary detection on the image <image>.',
    'Detect and label every visible object in the image <image>.',
    'Box all the things you can recognize in the image <image>.',
    '<image>Give a bounding box and a name for every object.',
    'Output boxes for all objects present in the picture <image>.',
    'Can you detect all objects in the image <image>?',
    'Localize each object in the image <image> with a bounding box and a label.',
    'Show me all the objects in the image <image> as labelled boxes.',
)

FOVS_TEMPLATES = (
    'Please segment objects in the image <image>.',
    'Please segment the objects in the image <image>.',
    '<image>Segment all objects and give their masks.',
    'Find every object in the picture <image> and segment it.',
    'What objects are in the image <image>? Provide segmentation masks.',
    '<image>Segment all the objects you can see.',
    'Run instance segmentation on the image <image>.',
    'Draw a mask over each object in the image <image>.',
    'Identify and segment all objects in the photo <image>.',
    'Segment everything in the image <image> and name each object.',
    '<image>List the objects in the image with their masks.',
    'Please find all objects in this picture <image> and give their masks.',
    'Which objects appear in the image <image>? Mark them with masks.',
    'Perform open-vocabulary segmentation on the image <image>.',
    'Segment and label every visible object in the image <image>.',
    'Mask all the things you can recognize in the image <image>.',
    '<image>Give a mask and a name for every object.',
    'Output masks for all objects present in the picture <image>.',
    'Can you segment all objects in the image <image>?',
    'Delineate each object in the image <image> with a mask and a label.',
    'Show me all the objects in the image <image> as labelled masks.',
)

TEMPLATES = {
    'ovd': OVD_TEMPLATES,
    'ovs': OVS_TEMPLATES,
    'fovd': FOVD_TEMPLATES,
    'fovs': FOVS_TEMPLATES,
}
_UNITS = {'ovd': 'box', 'ovs': 'mask', 'fovd': 'box', 'fovs': 'mask'}
NO_OBJECT_ANSWER = 'There is no such object in the image.'


def render_open_vocabulary(task: str,
                           image: ImageInfo,
                           instances: Sequence[Mapping],
                           rng: random.Random,
                           classes: Optional[Sequence[str]] = None,
                           record_id: Optional[str] = None) -> Dict:
    """An open-vocabulary detection / segmentation record covering all ``instances``.

    Args:
        task: ``'ovd'``, ``'ovs'`` (``classes`` required) or ``'fovd'``, ``'fovs'`` (no classes).
        instances: COCO-style instances; for ovd/ovs only those whose category is offered are
            targets.
        classes: class names offered in the prompt, in the order the answer follows; may
            include absent classes (real negatives).

    Returns:
        The record; the answer is one triplet per present category, or
        ``NO_OBJECT_ANSWER`` when nothing is present.
    """
    if task not in TEMPLATES:
        raise ValueError(f'render_open_vocabulary: task must be one of {sorted(TEMPLATES)}, '
                         f'got {task!r}')
    freeform = task.startswith('f')
    if freeform == (classes is not None):
        raise ValueError(f'{task}: classes must be {"omitted" if freeform else "given"}')
    if freeform:
        targets = list(range(len(instances)))
        human = pick_template(task, TEMPLATES[task], rng)
    else:
        for name in classes:
            check_plain_text(name, f'{task} class name')
        offered = set(classes)
        targets = [i for i, inst in enumerate(instances) if inst['category'] in offered]
        human = pick_template(task, TEMPLATES[task], rng, classes=', '.join(classes))
    answer, refs = detection_answer(instances, targets, _UNITS[task], order=classes)
    return build_record(task, image, instances, human, answer or NO_OBJECT_ANSWER, refs=refs,
                        classes=classes, record_id=record_id)


render_ovd = partial(render_open_vocabulary, 'ovd')
render_ovs = partial(render_open_vocabulary, 'ovs')
render_fovd = partial(render_open_vocabulary, 'fovd')
render_fovs = partial(render_open_vocabulary, 'fovs')
