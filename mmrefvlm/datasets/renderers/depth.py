"""Depth-estimation renderer: one ``<REF>`` decoded into the image's dense depth map.

The depth unit is image-level, yet every ``<REF>`` needs an instance (``docs/internals.md`` §2):
the renderer appends a whole-image instance (bbox = the image, ``category`` = the phrase) and
points the ``<REF>`` at it; the depth target itself is the record's ``depth`` PNG.
"""
import random
from typing import Dict, Mapping, Optional, Sequence

from mmrefvlm.trp import compose_answer

from .common import ImageInfo, build_record, pick_template

DEPTH_TEMPLATES = (
    'Please estimate the depth map of the image <image>.',
    '<image>Predict the depth of this scene.',
    'Generate a depth map for the picture <image>.',
    'How far away is each part of the image <image>? Give a depth map.',
    'Estimate the per-pixel depth of the image <image>.',
    '<image>Output the depth map of the image.',
    'Can you predict the depth of the scene in the image <image>?',
    'Provide a dense depth estimate for the photo <image>.',
    'What is the depth of every pixel in the image <image>?',
    'Compute the depth map of the picture <image>.',
    'Please perform monocular depth estimation on the image <image>.',
    '<image>Show how far the objects and the background are with a depth map.',
    'Infer the scene depth from the image <image>.',
    'Give me the distance of each pixel from the camera in the image <image>.',
    'Produce a depth image for the picture <image>.',
    'Estimate how deep the scene in the image <image> is at every location.',
    '<image>Please visualize the depth of this image.',
    'Turn the image <image> into a depth map.',
    'Predict a metric depth map for the photo <image>.',
    'Analyze the image <image> and estimate its depth.',
    'What does the depth map of the image <image> look like?',
)

TEMPLATES = {'depth': DEPTH_TEMPLATES}
DEPTH_PHRASE = 'depth map'


def render_depth(image: ImageInfo,
                 depth_path: str,
                 rng: random.Random,
                 instances: Sequence[Mapping] = (),
                 record_id: Optional[str] = None) -> Dict:
    """A depth record answered ``<Phrase>depth map</Phrase>(<Unit>depth</Unit>[0]<REF>)``.

    Args:
        depth_path: the 16-bit depth PNG (metres x 1000, 0 = invalid) relative to the image root.
        instances: the image's instances, kept in the record; the whole-image instance the
            ``<REF>`` points to is appended after them.
    """
    whole_image = {
        'bbox': [0, 0, int(image.width), int(image.height)],
        'category': DEPTH_PHRASE,
    }
    instances = list(instances) + [whole_image]
    human = pick_template('depth', DEPTH_TEMPLATES, rng)
    answer = compose_answer([(DEPTH_PHRASE, 'depth', 1)])
    return build_record('depth', image, instances, human, answer, refs=[len(instances) - 1],
                        depth=depth_path, record_id=record_id)
