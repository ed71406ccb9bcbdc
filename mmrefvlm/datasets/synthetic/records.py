"""Turn a synthetic scene into one VT-Instruct record of a given task, through the renderers."""
import random
from typing import Callable, Dict, List, Optional

from ..renderers import (PROMPT_TYPES, ImageInfo, add_turns, encode_rle, mask_bbox, render_caption,
                         render_depth, render_fovd, render_fovs, render_gcg, render_interactive,
                         render_keypoint, render_ovd, render_ovs, render_pope, render_rec,
                         render_reg, render_res, render_vqa, sample_prompt)
from .language import (caption_text, group_expression, grounded_caption, plural,
                       question_answer, unique_expressions)
from .scene import Scene
from .shapes import KEYPOINT_KIND, all_categories

KEYPOINT_TASKS = ('keypoint', 'ig_keypoint')
GROUP_EXPRESSION_RATE = 0.35  # rec/res: share of expressions that name every shape of a category
FOLLOW_UP_RATE = 0.25  # rec/res, one round asked: share of records with a second round
_EXPRESSION_ATTEMPTS = 3  # rec/res, several rounds asked: draws per round before giving up


def scene_instances(scene: Scene) -> List[Dict]:
    """COCO-style instances of ``scene`` (bbox / RLE of the visible pixels, category, depth in
    metres, keypoints for houses), in the scene's drawing order."""
    instances = []
    for shape in scene.shapes:
        instance = {
            'bbox': mask_bbox(shape.mask),
            'segmentation': encode_rle(shape.mask),
            'category': shape.category,
            'depth': shape.depth_mm / 1000.0,
        }
        if shape.keypoints is not None:
            instance['keypoints'] = [value for point in shape.keypoints for value in point]
        instances.append(instance)
    return instances


def scene_fits(task: str, scene: Scene, single_referent: bool = False) -> bool:
    """Whether ``scene`` can give a ``task`` record (a keypoint task needs a house with a
    labelled keypoint; REG, and REC/RES with ``single_referent``, need a shape with a unique
    expression)."""
    if task in KEYPOINT_TASKS:
        return any(s.keypoints and any(p[2] > 0 for p in s.keypoints) for s in scene.shapes)
    if task == 'reg' or (single_referent and task in ('rec', 'res')):
        return any(unique_expressions(scene, i) for i in range(len(scene.shapes)))
    return True


def _expression(scene: Scene, rng: random.Random, exclude: Optional[str] = None,
                single_referent: bool = False):
    """A (expression, targets) pair: a group expression or a unique one for a random shape
    (with ``single_referent``, always a unique one; when none but ``exclude`` exists,
    ``(exclude, [])``, which the caller drops as a repeat)."""
    categories = sorted({s.category for s in scene.shapes})
    repeated = [c for c in categories if sum(s.category == c for s in scene.shapes) > 1]
    if repeated and not single_referent and rng.random() < GROUP_EXPRESSION_RATE:
        return group_expression(scene, rng.choice(repeated), rng)
    if single_referent:
        options = {i: [e for e in unique_expressions(scene, i) if e != exclude]
                   for i in range(len(scene.shapes))}
        targets = [i for i, found in options.items() if found]
        if not targets:
            return exclude, []
        target = rng.choice(targets)
        return rng.choice(options[target]), [target]
    target = rng.randrange(len(scene.shapes))
    options = [e for e in unique_expressions(scene, target) if e != exclude]
    if not options:
        return group_expression(scene, scene.shapes[target].category, rng)
    return rng.choice(options), [target]


def _grounding(render: Callable, scene: Scene, image: ImageInfo, instances, rng, record_id,
               single_referent: bool, rounds: int):
    expression, targets = _expression(scene, rng, single_referent=single_referent)
    record = render(image, instances, expression, targets, rng, record_id=record_id)
    if rounds > 1:
        asked = {expression}
        for _ in range(_EXPRESSION_ATTEMPTS * rounds):
            if len(asked) == rounds:
                break
            more, more_targets = _expression(scene, rng, single_referent=single_referent)
            if more not in asked and more_targets:
                asked.add(more)
                add_turns(record, render(image, instances, more, more_targets, rng))
        return record
    if rng.random() < FOLLOW_UP_RATE:
        second, second_targets = _expression(scene, rng, exclude=expression,
                                             single_referent=single_referent)
        if second != expression:
            add_turns(record, render(image, instances, second, second_targets, rng))
    return record


def _prompted_target(scene: Scene, rng: random.Random, candidates: List[int]):
    target = rng.choice(candidates)
    return target, sample_prompt(rng.choice(PROMPT_TYPES), scene.shapes[target].mask, rng)


def build_scene_record(task: str, scene: Scene, image: ImageInfo, depth_path: str,
                       rng: random.Random, record_id: str, single_referent: bool = False,
                       rounds: int = 1) -> Dict:
    """One ``task`` record about ``scene`` (``scene_fits(task, scene, single_referent)`` must
    hold). ``single_referent``: REC/RES expressions name one object each (the RefCOCO protocol
    that REC Acc@0.5 scores: one referent per expression), never a whole category.
    ``rounds``: REC/RES records ask this many distinct expressions, one (human, gpt) round each
    (fewer when the scene has fewer); 1 asks one, with a follow-up in ``FOLLOW_UP_RATE`` of
    the records."""
    instances = scene_instances(scene)
    everyone = list(range(len(scene.shapes)))
    if task in ('rec', 'res'):
        render = render_rec if task == 'rec' else render_res
        return _grounding(render, scene, image, instances, rng, record_id, single_referent,
                          rounds)
    if task == 'reg':
        target, prompt = _prompted_target(
            scene, rng, [i for i in everyone if unique_expressions(scene, i)])
        description = rng.choice(unique_expressions(scene, target))
        return render_reg(image, instances, prompt, description, rng, record_id=record_id)
    if task in ('ig_box', 'ig_mask', 'ig_keypoint'):
        candidates = everyone if task != 'ig_keypoint' else [
            i for i, s in enumerate(scene.shapes)
            if s.keypoints and any(p[2] > 0 for p in s.keypoints)]
        target, prompt = _prompted_target(scene, rng, candidates)
        return render_interactive(task, image, instances, [prompt], [target], rng,
                                  record_id=record_id)
    if task in ('gcg_box', 'gcg_mask'):
        return render_gcg(task, image, instances, grounded_caption(scene, rng), rng,
                          record_id=record_id)
    if task == 'caption':
        return render_caption(image, caption_text(grounded_caption(scene, rng)), rng,
                              instances=instances, record_id=record_id)
    if task == 'vqa':
        question, answer = question_answer(scene, rng)
        return render_vqa(image, question, answer, rng, instances=instances, record_id=record_id)
    if task == 'pope':
        present = sorted({s.category for s in scene.shapes})
        absent = [c for c in all_categories() if c not in present]
        is_present = rng.random() < 0.5
        obj = rng.choice(present if is_present else absent)
        return render_pope(image, obj, is_present, rng, instances=instances, record_id=record_id)
    if task in ('ovd', 'ovs'):
        present = sorted({s.category for s in scene.shapes})
        absent = [c for c in all_categories() if c not in present]
        offered = present + rng.sample(absent, rng.randint(1, 3))
        rng.shuffle(offered)
        render = render_ovd if task == 'ovd' else render_ovs
        return render(image, instances, rng, classes=offered, record_id=record_id)
    if task in ('fovd', 'fovs'):
        render = render_fovd if task == 'fovd' else render_fovs
        return render(image, instances, rng, record_id=record_id)
    if task == 'keypoint':
        return render_keypoint(image, instances, rng, object_name=KEYPOINT_KIND,
                               objects_name=plural(KEYPOINT_KIND), record_id=record_id)
    if task == 'depth':
        return render_depth(image, depth_path, rng, instances=instances, record_id=record_id)
    raise ValueError(f'build_scene_record: no synthetic recipe for task {task!r}')
