"""Task renderers: annotations of one image → one VT-Instruct record (docs/internals.md §2).

``RENDERERS[task]`` is the renderer of ``task`` and ``TEMPLATES[task]`` its bank of human-prompt
templates (the only copy of them). Renderers take the image info, the COCO-style instances,
task-specific arguments and a ``random.Random`` that picks the template:

=====================  ======================================================================
task                   call
=====================  ======================================================================
caption                ``render_caption(image, caption, rng, instances=())``
vqa                    ``render_vqa(image, question, answer, rng, instances=())``
pope                   ``render_pope(image, obj, present, rng, instances=())``
rec / res              ``render_rec(image, instances, expression, targets, rng)``
reg                    ``render_reg(image, instances, prompt, description, rng)``
ig_box/mask/keypoint   ``render_ig_box(image, instances, prompts, targets, rng, phrases=None)``
gcg_box / gcg_mask     ``render_gcg_box(image, instances, segments, rng)``
ovd / ovs              ``render_ovd(image, instances, rng, classes=[...])``
fovd / fovs            ``render_fovd(image, instances, rng)``
keypoint               ``render_keypoint(image, instances, rng, object_name, objects_name)``
depth                  ``render_depth(image, depth_path, rng, instances=())``
=====================  ======================================================================

Every renderer also takes ``record_id=None``. ``add_turns(record, *followups)`` makes a
multi-turn conversation from records rendered on the same image and instances.
"""
from .common import (ImageInfo, add_turns, build_record, detection_answer, group_by_category,
                     strip_image_placeholder, with_article)
from .depth import render_depth
from .gcg import render_gcg, render_gcg_box, render_gcg_mask, segments_from_spans
from .interactive import render_ig_box, render_ig_keypoint, render_ig_mask, render_interactive
from .keypoint import render_keypoint
from .open_vocabulary import (render_fovd, render_fovs, render_open_vocabulary, render_ovd,
                              render_ovs)
from .prompts import PROMPT_TYPES, encode_rle, mask_bbox, sample_prompt
from .referring import render_rec, render_reg, render_res
from .visual_understanding import render_caption, render_pope, render_vqa
from . import depth, gcg, interactive, keypoint, open_vocabulary, referring, visual_understanding

RENDERERS = {
    'caption': render_caption,
    'vqa': render_vqa,
    'pope': render_pope,
    'rec': render_rec,
    'res': render_res,
    'reg': render_reg,
    'ig_box': render_ig_box,
    'ig_mask': render_ig_mask,
    'ig_keypoint': render_ig_keypoint,
    'gcg_box': render_gcg_box,
    'gcg_mask': render_gcg_mask,
    'ovd': render_ovd,
    'ovs': render_ovs,
    'fovd': render_fovd,
    'fovs': render_fovs,
    'keypoint': render_keypoint,
    'depth': render_depth,
}

TEMPLATES = {}
for _family in (visual_understanding, referring, interactive, gcg, open_vocabulary, keypoint,
                depth):
    TEMPLATES.update(_family.TEMPLATES)
del _family

__all__ = [
    'RENDERERS', 'TEMPLATES', 'ImageInfo', 'add_turns', 'build_record', 'detection_answer',
    'group_by_category', 'strip_image_placeholder', 'with_article', 'PROMPT_TYPES',
    'encode_rle', 'mask_bbox', 'sample_prompt', 'render_caption', 'render_vqa', 'render_pope',
    'render_rec', 'render_res', 'render_reg', 'render_interactive', 'render_ig_box',
    'render_ig_mask', 'render_ig_keypoint', 'render_gcg', 'render_gcg_box', 'render_gcg_mask',
    'segments_from_spans', 'render_open_vocabulary', 'render_ovd', 'render_ovs', 'render_fovd',
    'render_fovs', 'render_keypoint', 'render_depth'
]
