"""Keypoint-detection renderer: every instance with keypoints, one triplet per category."""
import random
from typing import Dict, Mapping, Optional, Sequence

from .common import ImageInfo, build_record, detection_answer, pick_template

KEYPOINT_TEMPLATES = (
    'Please detect all the {objects} and visualize all the keypoints in the image <image>.',
    '<image>Detect every {object} and its keypoints.',
    'Find all {objects} in the picture <image> and mark their keypoints.',
    'Estimate the pose of each {object} in the image <image>.',
    'Locate the keypoints of all {objects} in the image <image>.',
    '<image>Please find the keypoints of every {object} in this image.',
    'Where are the keypoints of the {objects} in the photo <image>?',
    'Run keypoint detection for {objects} on the image <image>.',
    'Detect the {objects} in the image <image> and output their keypoints.',
    'Identify all {objects} in the image <image> and locate each of their keypoints.',
    'Give me the keypoints of every {object} visible in the picture <image>.',
    '<image>Perform pose estimation on all {objects}.',
    'Mark the keypoints of each {object} that appears in the image <image>.',
    'Can you visualize the keypoints of all {objects} in the image <image>?',
    'For every {object} in the image <image>, predict its keypoints.',
    'Show the skeleton keypoints of the {objects} in this image <image>.',
    'Please localize all {object} keypoints in the image <image>.',
    'Detect {objects} and their keypoints in the given image <image>.',
    '<image>Find each {object} and visualize its keypoints.',
    'Analyze the image <image> and output the keypoints of all {objects}.',
    'What is the pose of every {object} in the picture <image>?',
)

TEMPLATES = {'keypoint': KEYPOINT_TEMPLATES}


def render_keypoint(image: ImageInfo,
                    instances: Sequence[Mapping],
                    rng: random.Random,
                    object_name: str = 'person',
                    objects_name: str = 'people',
                    record_id: Optional[str] = None) -> Dict:
    """A keypoint-detection record over every instance that has a labelled keypoint.

    Args:
        instances: COCO-style instances; those with ``keypoints`` (COCO ``[x, y, v] * K``) and
            at least one ``v > 0`` are targets, grouped per ``category`` (sorted names).
        object_name: singular name of the keypoint object used in the prompt ('person').
        objects_name: its plural ('people').

    Raises:
        ValueError: when no instance has a labelled keypoint.
    """
    targets = [i for i, inst in enumerate(instances)
               if any(v > 0 for v in inst.get('keypoints', [])[2::3])]
    if not targets:
        raise ValueError(f'keypoint: image {image.id!r} has no instance with labelled keypoints')
    human = pick_template('keypoint', KEYPOINT_TEMPLATES, rng, object=object_name,
                          objects=objects_name)
    answer, refs = detection_answer(instances, targets, 'keypoint')
    return build_record('keypoint', image, instances, human, answer, refs=refs,
                        record_id=record_id)
