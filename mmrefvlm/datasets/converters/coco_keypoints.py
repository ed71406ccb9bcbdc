"""COCO person keypoints (``person_keypoints_*.json``) → ``keypoint`` and ``ig_keypoint`` records.

``keypoint``: one record per image over every non-crowd person with at least one labelled
keypoint. ``ig_keypoint``: one record per such person, whose visual prompt (type drawn from
``prompt_types``) is sampled from the person's mask with
:func:`mmrefvlm.datasets.renderers.sample_prompt`; the record lists all the image's people and
``refs`` points at the prompted one.
"""
from typing import Callable, Dict, Iterable, Iterator, List, Sequence

from ..renderers import PROMPT_TYPES, render_ig_keypoint, render_keypoint, sample_prompt
from .coco_annotations import (category_names, coco_instance, image_info, load_json,
                               normalize_segmentation, segmentation_mask)
from .output import ConversionSummary, record_rng

KEYPOINT_TASKS = ('keypoint', 'ig_keypoint')
# OKS sigmas of the 17 COCO keypoints (cocoapi ``COCOeval.Params.kpt_oks_sigmas``).
COCO_KEYPOINT_SIGMAS = (0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062,
                        0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089)


def keypoint_meta(dataset: Dict) -> Dict:
    """``meta.json`` of a COCO keypoint set: class, keypoint names, OKS sigmas, 0-based skeleton.

    Names and skeleton come from the file's single keypoint category (COCO's skeleton is
    1-based); the sigmas are the official COCO ones, so the category must have 17 keypoints.
    """
    categories = [cat for cat in dataset['categories'] if cat.get('keypoints')]
    if len(categories) != 1:
        raise ValueError(f'coco keypoints: expected one category with keypoints, found '
                         f'{len(categories)}')
    category = categories[0]
    names = list(category['keypoints'])
    if len(names) != len(COCO_KEYPOINT_SIGMAS):
        raise ValueError(f'coco keypoints: category {category["name"]!r} has {len(names)} '
                         f'keypoints; the COCO sigmas are for {len(COCO_KEYPOINT_SIGMAS)}')
    return {
        'classes': [category['name']],
        'keypoint_names': names,
        'keypoint_sigmas': list(COCO_KEYPOINT_SIGMAS),
        'skeleton': [[int(i) - 1, int(j) - 1] for i, j in category.get('skeleton', [])],
    }


def convert_coco_keypoints(ann_file: str,
                           summary: ConversionSummary,
                           tasks: Sequence[str] = KEYPOINT_TASKS,
                           seed: int = 0,
                           prompt_types: Sequence[str] = PROMPT_TYPES,
                           id_prefix: str = 'cocokpt',
                           image_prefix: str = '',
                           progress: Callable[[Iterable], Iterable] = iter) -> Iterator[Dict]:
    """Yield ``keypoint`` / ``ig_keypoint`` records of a COCO person-keypoints file.

    Args:
        ann_file: ``person_keypoints_*.json``.
        summary: counts skipped people and images (per reason).
        tasks: any of ``'keypoint', 'ig_keypoint'``.
        seed: template and prompt choice.
        prompt_types: visual prompt types drawn from for ``ig_keypoint``.
        id_prefix: record ids are ``'{id_prefix}_{image id}_keypoint'`` and
            ``'{id_prefix}_{image id}_{ann id}_ig_keypoint'``.
        image_prefix: prepended to ``file_name`` for the record's ``image``.
        progress: wraps the image loop (e.g. ``tqdm``).
    """
    unknown = set(tasks) - set(KEYPOINT_TASKS)
    if unknown:
        raise ValueError(f'coco keypoints: unknown tasks {sorted(unknown)}; '
                         f'choose from {", ".join(KEYPOINT_TASKS)}')
    bad_prompts = set(prompt_types) - set(PROMPT_TYPES)
    if bad_prompts or not prompt_types:
        raise ValueError(f'coco keypoints: prompt types must be among {PROMPT_TYPES}, got '
                         f'{list(prompt_types)}')
    dataset = load_json(ann_file)
    meta = keypoint_meta(dataset)
    names = category_names(dataset['categories'])
    anns_of: Dict[int, List[Dict]] = {}
    for ann in dataset['annotations']:
        anns_of.setdefault(ann['image_id'], []).append(ann)
    for image in progress(dataset['images']):
        info = image_info(image, id_prefix, image_prefix)
        people, sources = [], []
        for ann in anns_of.get(image['id'], []):
            instance, reason = coco_instance(ann, names[ann['category_id']], info.width,
                                             info.height, with_mask=False)
            if reason is None and len(ann.get('keypoints', ())) != 3 * len(
                    meta['keypoint_names']):
                reason = 'wrong number of keypoints'
            if reason is None and not any(v > 0 for v in ann['keypoints'][2::3]):
                reason = 'no labelled keypoints'
            if reason:
                summary.skip(f'person skipped: {reason}')
                continue
            people.append(instance)
            sources.append(ann)
        if not people:
            summary.skip('image without labelled people')
            continue
        if 'keypoint' in tasks:
            yield render_keypoint(info, people, record_rng(seed, info.id, 'keypoint'))
        if 'ig_keypoint' in tasks:
            yield from _interactive_records(info, people, sources, seed, prompt_types, summary)


def _interactive_records(info, people: List[Dict], sources: List[Dict], seed: int,
                         prompt_types: Sequence[str], summary: ConversionSummary) -> Iterator[Dict]:
    for index, ann in enumerate(sources):
        segm = normalize_segmentation(ann.get('segmentation'), info.height, info.width)
        mask = None if segm is None else segmentation_mask(segm, info.height, info.width)
        if mask is None or not mask.any():
            summary.skip('ig_keypoint: person without a mask for the visual prompt')
            continue
        record_id = f'{info.id}_{ann["id"]}_ig_keypoint'
        rng = record_rng(seed, record_id)
        prompt = sample_prompt(rng.choice(list(prompt_types)), mask, rng)
        yield render_ig_keypoint(info, people, [prompt], [index], rng, record_id=record_id)
