"""RefCOCO / RefCOCO+ / RefCOCOg (``refs(unc).p`` / ``refs(umd).p`` + ``instances.json``) →
``rec``, ``res`` and ``reg`` records.

``rec``/``res``: one record per sentence (the evaluation protocol scores every sentence), the
referred annotation as the only instance. ``reg``: the region is given as a visual prompt
sampled from the annotation's mask (type drawn from ``prompt_types``); on the ``train`` split one
record per sentence, on the other splits one record per ref answered by its first sentence. Every
``reg`` record stores all sentences of its ref in ``references`` (what the caption metric scores
against).

The refs file is a Python pickle: only convert files you trust.
"""
import pickle
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence

from ..renderers import PROMPT_TYPES, render_rec, render_reg, render_res, sample_prompt
from .coco_annotations import (category_names, coco_instance, image_info, load_json,
                               segmentation_mask)
from .output import ConversionSummary, record_rng

REFERRING_TASKS = ('rec', 'res', 'reg')
SPLITS = ('train', 'val', 'test', 'testA', 'testB')


def load_refs(path: str) -> List[Dict]:
    """The list of refs of a ``refs(*).p`` pickle (``ref_id, ann_id, image_id, split,
    sentences[{sent, sent_id}], ...``)."""
    with open(path, 'rb') as f:
        refs = pickle.load(f)
    if not isinstance(refs, list):
        raise ValueError(f'{path}: expected a pickled list of refs, got {type(refs).__name__}')
    return refs


def _sentences(ref: Dict, summary: ConversionSummary) -> List[tuple]:
    """``[(sent_id, text), ...]`` of a ref, empty sentences counted and dropped."""
    sentences = []
    for index, sentence in enumerate(ref.get('sentences', [])):
        text = ' '.join(str(sentence.get('sent', '')).split())
        if not text:
            summary.skip('empty sentence')
            continue
        sentences.append((sentence.get('sent_id', index), text))
    return sentences


def convert_refcoco(refs_file: str,
                    instances_file: str,
                    summary: ConversionSummary,
                    split: Optional[str] = None,
                    tasks: Sequence[str] = REFERRING_TASKS,
                    seed: int = 0,
                    prompt_types: Sequence[str] = ('box', ),
                    dataset_name: str = 'refcoco',
                    image_prefix: str = '',
                    progress: Callable[[Iterable], Iterable] = iter) -> Iterator[Dict]:
    """Yield ``tasks`` records of the refs of ``split`` (all refs when ``split`` is ``None``).

    Args:
        refs_file: ``refs(unc).p`` / ``refs(umd).p``.
        instances_file: the matching ``instances.json`` (images, annotations, categories).
        summary: counts skipped refs and sentences (per reason).
        split: ``'train'``, ``'val'``, ``'test'``, ``'testA'`` or ``'testB'``.
        tasks: any of ``'rec', 'res', 'reg'``.
        seed: template and prompt choice.
        prompt_types: visual prompt types drawn from for ``reg``.
        dataset_name: record ids are ``'{name}_{split}_{ref_id}_{sent_id}_{task}'`` (``reg``
            per ref: ``'{name}_{split}_{ref_id}_reg'``).
        image_prefix: prepended to ``file_name`` for the record's ``image``.
        progress: wraps the ref loop (e.g. ``tqdm``).
    """
    unknown = set(tasks) - set(REFERRING_TASKS)
    if unknown:
        raise ValueError(f'refcoco: unknown tasks {sorted(unknown)}; '
                         f'choose from {", ".join(REFERRING_TASKS)}')
    if split is not None and split not in SPLITS:
        raise ValueError(f'refcoco: unknown split {split!r}; choose from {", ".join(SPLITS)}')
    if set(prompt_types) - set(PROMPT_TYPES) or not prompt_types:
        raise ValueError(f'refcoco: prompt types must be among {PROMPT_TYPES}, got '
                         f'{list(prompt_types)}')
    dataset = load_json(instances_file)
    names = category_names(dataset['categories'])
    images = {image['id']: image for image in dataset['images']}
    anns = {ann['id']: ann for ann in dataset['annotations']}
    refs = [ref for ref in load_refs(refs_file) if split is None or ref['split'] == split]
    for ref in progress(refs):
        ann, image = anns.get(ref['ann_id']), images.get(ref['image_id'])
        if ann is None or image is None:
            summary.skip('ref whose annotation or image is missing from instances.json')
            continue
        info = image_info(image, dataset_name, image_prefix)
        instance, reason = coco_instance(ann, names[ann['category_id']], info.width,
                                         info.height)
        if reason:
            summary.skip(f'ref skipped: {reason}')
            continue
        sentences = _sentences(ref, summary)
        if not sentences:
            summary.skip('ref without sentences')
            continue
        stem = f'{dataset_name}_{ref["split"]}_{ref["ref_id"]}'
        box_instance = {'bbox': instance['bbox'], 'category': instance['category']}
        for sent_id, text in sentences:
            for task, render, inst in (('rec', render_rec, box_instance),
                                       ('res', render_res, instance)):
                if task in tasks:
                    record_id = f'{stem}_{sent_id}_{task}'
                    yield render(info, [inst], text, [0], record_rng(seed, record_id),
                                 record_id=record_id)
        if 'reg' in tasks:
            mask = segmentation_mask(instance['segmentation'], info.height, info.width)
            if not mask.any():
                summary.skip('reg: ref with an empty mask')
                continue
            per_sentence = ref['split'] == 'train'
            for sent_id, text in sentences if per_sentence else sentences[:1]:
                record_id = f'{stem}_{sent_id}_reg' if per_sentence else f'{stem}_reg'
                rng = record_rng(seed, record_id)
                prompt = sample_prompt(rng.choice(list(prompt_types)), mask, rng)
                record = render_reg(info, [box_instance], prompt, text, rng, record_id=record_id)
                record['references'] = [sentence for _, sentence in sentences]
                yield record
