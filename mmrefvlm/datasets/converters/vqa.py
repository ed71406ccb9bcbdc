"""VQAv2 (questions + annotations JSON) → ``vqa`` records, POPE (JSONL) → ``pope`` records.

VQAv2: one record per question, answered by the annotation's ``multiple_choice_answer``; the ten
human answers are kept in the record's ``references`` (what the VQA accuracy scores against) and
the ``question_id`` alongside. Without annotations (test-dev) the answer is empty and
``references`` absent. POPE lines are ``{question_id, image, text, label}`` with
``text = 'Is there a/an OBJECT in the image?'``; the object is re-asked with the POPE template
bank and answered 'Yes' / 'No'. Image sizes come from COCO ``instances_*.json`` or image headers.
"""
import json
import re
from typing import Callable, Dict, Iterable, Iterator, Optional

from ..renderers import ImageInfo, render_pope, render_vqa
from .coco_annotations import ImageSizes, load_json
from .output import ConversionSummary, record_rng

_POPE_QUESTION = re.compile(r'^\s*is there (?:an?|the) (.+?) in the (?:image|imgae|picture)\??\s*$',
                            re.IGNORECASE)


def convert_vqav2(questions_file: str,
                  summary: ConversionSummary,
                  sizes: ImageSizes,
                  annotations_file: Optional[str] = None,
                  seed: int = 0,
                  id_prefix: str = 'vqav2',
                  image_prefix: Optional[str] = None,
                  progress: Callable[[Iterable], Iterable] = iter) -> Iterator[Dict]:
    """Yield one ``vqa`` record per VQAv2 question.

    Args:
        questions_file: ``v2_OpenEnded_mscoco_{subtype}_questions.json``.
        summary: counts skipped questions (per reason).
        sizes: image sizes, looked up by COCO file name or image id.
        annotations_file: ``v2_mscoco_{subtype}_annotations.json`` (absent for test splits).
        seed: template choice.
        id_prefix: record ids are ``'{id_prefix}_{question id}'``.
        image_prefix: folder of the images relative to the image root (default
            ``'{data_subtype}/'``); file names are ``COCO_{subtype}_{image id:012d}.jpg``.
        progress: wraps the question loop (e.g. ``tqdm``).
    """
    questions = load_json(questions_file)
    subtype = questions.get('data_subtype', '')
    prefix = f'{subtype}/' if image_prefix is None else image_prefix
    answers = {}
    if annotations_file is not None:
        answers = {ann['question_id']: ann for ann in load_json(annotations_file)['annotations']}
    for question in progress(questions['questions']):
        ann = answers.get(question['question_id'])
        if annotations_file is not None and ann is None:
            summary.skip('question without an annotation')
            continue
        name = f'COCO_{subtype}_{int(question["image_id"]):012d}.jpg'
        size = sizes.get(name, question['image_id'])
        if size is None:
            summary.skip('image of unknown size')
            continue
        info = ImageInfo(id=str(question['image_id']), path=prefix + name, width=size[0],
                         height=size[1])
        record_id = f'{id_prefix}_{question["question_id"]}'
        answer = '' if ann is None else ann['multiple_choice_answer']
        try:
            record = render_vqa(info, question['question'], answer, record_rng(seed, record_id),
                                record_id=record_id)
        except ValueError:
            summary.skip('question or answer with TRP tags')
            continue
        record['question_id'] = question['question_id']
        if ann is not None:
            record['references'] = [a['answer'] for a in ann['answers']]
        yield record


def pope_object(text: str) -> Optional[str]:
    """The object of a POPE question ('Is there a dining table in the image?' → 'dining table')."""
    match = _POPE_QUESTION.match(text)
    return match.group(1) if match else None


def convert_pope(pope_file: str,
                 summary: ConversionSummary,
                 sizes: ImageSizes,
                 seed: int = 0,
                 id_prefix: str = 'pope',
                 image_prefix: str = '',
                 progress: Callable[[Iterable], Iterable] = iter) -> Iterator[Dict]:
    """Yield one ``pope`` record per line of a POPE question file.

    Args:
        pope_file: e.g. ``coco_pope_random.json`` (JSON lines).
        summary: counts skipped lines (per reason).
        sizes: image sizes, looked up by the line's ``image``.
        seed: template choice.
        id_prefix: record ids are ``'{id_prefix}_{question_id}'``.
        image_prefix: prepended to ``image`` for the record's ``image``.
        progress: wraps the line loop (e.g. ``tqdm``).
    """
    with open(pope_file, encoding='utf-8') as f:
        lines = [(number, line) for number, line in enumerate(f, start=1) if line.strip()]
    for number, line in progress(lines):
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f'{pope_file} line {number}: not valid JSON: {error}') from None
        label = str(item.get('label', '')).strip().lower()
        obj = pope_object(item.get('text', ''))
        if label not in ('yes', 'no'):
            summary.skip('label is neither yes nor no')
            continue
        if obj is None:
            summary.skip("question is not 'Is there a/an X in the image?'")
            continue
        size = sizes.get(item['image'])
        if size is None:
            summary.skip('image of unknown size')
            continue
        info = ImageInfo(id=str(item['question_id']), path=image_prefix + item['image'],
                         width=size[0], height=size[1])
        record_id = f'{id_prefix}_{item["question_id"]}'
        record = render_pope(info, obj, label == 'yes', record_rng(seed, record_id),
                             record_id=record_id)
        record['question_id'] = item['question_id']
        yield record
