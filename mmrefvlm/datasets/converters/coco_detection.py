"""COCO instances (``instances_*.json``) → open-vocabulary detection / segmentation records.

One record per image and task: ``ovd``/``ovs`` offer a class list in the prompt (every class
present in the image plus ``num_negatives`` absent ones drawn at random, shuffled; or the whole
class list with ``all_classes``, the evaluation protocol), ``fovd``/``fovs`` offer none. Crowd
annotations and empty boxes are left out (and counted); an image with no object left gives no
record, so no answer is a text-only negative.
"""
from typing import Callable, Dict, Iterable, Iterator, List, Sequence

from ..renderers import render_fovd, render_fovs, render_ovd, render_ovs
from .coco_annotations import category_names, coco_instance, image_info, load_json
from .output import ConversionSummary, record_rng

DETECTION_TASKS = ('ovd', 'ovs', 'fovd', 'fovs')
_RENDERERS = {'ovd': render_ovd, 'ovs': render_ovs, 'fovd': render_fovd, 'fovs': render_fovs}
_WITH_MASK = {'ovd': False, 'ovs': True, 'fovd': False, 'fovs': True}


def coco_classes(dataset: Dict) -> List[str]:
    """Class names of a COCO dataset in category-id order (``meta.json`` ``classes``)."""
    return [cat['name'] for cat in sorted(dataset['categories'], key=lambda c: c['id'])]


def _offered_classes(present: Sequence[str], classes: Sequence[str], num_negatives: int,
                     all_classes: bool, rng) -> List[str]:
    if all_classes:
        return list(classes)
    present_set = set(present)
    absent = [name for name in classes if name not in present_set]
    offered = list(present) + rng.sample(absent, min(num_negatives, len(absent)))
    rng.shuffle(offered)
    return offered


def convert_coco_detection(ann_file: str,
                           summary: ConversionSummary,
                           tasks: Sequence[str] = DETECTION_TASKS,
                           seed: int = 0,
                           num_negatives: int = 3,
                           all_classes: bool = False,
                           id_prefix: str = 'coco',
                           image_prefix: str = '',
                           progress: Callable[[Iterable], Iterable] = iter) -> Iterator[Dict]:
    """Yield ``tasks`` records for every image of a COCO instances file.

    Args:
        ann_file: ``instances_*.json``.
        summary: counts skipped annotations (per reason) and images without objects.
        tasks: any of ``'ovd', 'ovs', 'fovd', 'fovs'``.
        seed: template, negative-class and class-order choice.
        num_negatives: absent classes offered in ``ovd``/``ovs`` prompts.
        all_classes: offer every class of the dataset (in category-id order) instead.
        id_prefix: record ids are ``'{id_prefix}_{image id}_{task}'``.
        image_prefix: prepended to ``file_name`` for the record's ``image``.
        progress: wraps the image loop (e.g. ``tqdm``).
    """
    unknown = set(tasks) - set(DETECTION_TASKS)
    if unknown:
        raise ValueError(f'coco detection: unknown tasks {sorted(unknown)}; '
                         f'choose from {", ".join(DETECTION_TASKS)}')
    dataset = load_json(ann_file)
    names = category_names(dataset['categories'])
    classes = coco_classes(dataset)
    anns_of: Dict[int, List[Dict]] = {}
    for ann in dataset['annotations']:
        anns_of.setdefault(ann['image_id'], []).append(ann)
    for image in progress(dataset['images']):
        info = image_info(image, id_prefix, image_prefix)
        for task in tasks:
            instances = []
            for ann in anns_of.get(image['id'], []):
                instance, reason = coco_instance(ann, names[ann['category_id']], info.width,
                                                 info.height, with_mask=_WITH_MASK[task])
                if reason:
                    summary.skip(f'{task}: annotation skipped: {reason}')
                else:
                    instances.append(instance)
            if not instances:
                summary.skip(f'{task}: image without usable objects')
                continue
            rng = record_rng(seed, info.id, task)
            if task in ('ovd', 'ovs'):
                present = sorted({inst['category'] for inst in instances})
                offered = _offered_classes(present, classes, num_negatives, all_classes, rng)
                yield _RENDERERS[task](info, instances, rng, classes=offered)
            else:
                yield _RENDERERS[task](info, instances, rng)
