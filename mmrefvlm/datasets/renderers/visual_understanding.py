"""Visual understanding renderers: image caption, VQA and POPE (text-only answers, no ``<REF>``)."""
import random
from typing import Dict, Mapping, Optional, Sequence

from .common import ImageInfo, build_record, check_plain_text, pick_template, with_article

CAPTION_TEMPLATES = (
    '<image>Please describe the image in detail.',
    '<image>Describe this image.',
    'Give a short description of the image <image>.',
    'What is shown in the image <image>?',
    'Write a caption for the picture <image>.',
    'Summarize the content of the image <image> in one sentence.',
    '<image>What does this picture show?',
    'Can you describe what you see in the image <image>?',
    'Provide a brief caption for the image <image>.',
    'Look at the image <image> and describe it.',
    'Tell me what is in the picture <image>.',
    '<image>Write a sentence that describes this scene.',
    'Describe the scene depicted in the image <image>.',
    'Please caption the image <image>.',
    'What can be seen in the picture <image>?',
    'Give me a concise description of the image <image>.',
    '<image>Briefly explain what this image contains.',
    'Here is an image <image>. Describe its content.',
    'How would you describe the image <image> to someone who cannot see it?',
    'Generate a descriptive caption for the photo <image>.',
    'Explain the visual content of the image <image>.',
    '<image>Share a short summary of the picture.',
)

VQA_TEMPLATES = (
    'Please take a look at the image <image> and promptly provide an answer for {question}',
    '<image>{question}',
    '<image>Answer the question: {question}',
    'Look at the image <image> and answer: {question}',
    'Based on the image <image>, {question}',
    'Given the picture <image>, answer the following question. {question}',
    '{question} Answer using the image <image>.',
    'Here is an image <image>. {question}',
    'Considering the image <image>, please answer: {question}',
    'Use the image <image> to answer this question: {question}',
    'Question about the image <image>: {question}',
    'After examining the image <image>, respond to: {question}',
    '<image>Please answer briefly. {question}',
    'From what you can see in the picture <image>, {question}',
    'Image: <image> Question: {question}',
    'Study the image <image> carefully. {question}',
    'Answer the question about the picture <image> with a short answer. {question}',
    'With reference to the image <image>, {question}',
    'I have a question about this image <image>: {question}',
    '<image>Observe the image and answer. {question}',
    'Check the image <image> and tell me: {question}',
)

POPE_TEMPLATES = (
    'Is there {obj} in the image <image>?',
    '<image>Is there {obj} in the image?',
    'Does the image <image> contain {obj}?',
    'Can you see {obj} in the picture <image>?',
    'Look at the image <image>. Is there {obj}?',
    '<image>Does this picture show {obj}?',
    'Is {obj} present in the image <image>?',
    'In the image <image>, is there {obj}? Answer yes or no.',
    'Answer yes or no: is there {obj} in the picture <image>?',
    'Does {obj} appear in the image <image>?',
    '<image>Can {obj} be found in this image?',
    'Is it true that the image <image> contains {obj}?',
    'Please check whether there is {obj} in the image <image>.',
    'Tell me if there is {obj} in the picture <image>.',
    'Is {obj} visible in the image <image>?',
    '<image>Yes or no: does the image include {obj}?',
    'Examine the picture <image>: is there {obj} anywhere?',
    'Do you notice {obj} in the image <image>?',
    'Given the image <image>, is there {obj} in it?',
    'Can you find {obj} in this image <image>?',
    'Does the picture <image> have {obj} in it?',
)

TEMPLATES = {'caption': CAPTION_TEMPLATES, 'vqa': VQA_TEMPLATES, 'pope': POPE_TEMPLATES}


def render_caption(image: ImageInfo,
                   caption: str,
                   rng: random.Random,
                   instances: Sequence[Mapping] = (),
                   record_id: Optional[str] = None) -> Dict:
    """A caption record: a caption request answered by ``caption`` (plain text)."""
    check_plain_text(caption, 'caption')
    human = pick_template('caption', CAPTION_TEMPLATES, rng)
    return build_record('caption', image, instances, human, caption, record_id=record_id)


def render_vqa(image: ImageInfo,
               question: str,
               answer: str,
               rng: random.Random,
               instances: Sequence[Mapping] = (),
               record_id: Optional[str] = None) -> Dict:
    """A VQA record: ``question`` wrapped in a template, answered by ``answer`` (plain text)."""
    check_plain_text(answer, 'vqa answer')
    human = pick_template('vqa', VQA_TEMPLATES, rng, question=question)
    return build_record('vqa', image, instances, human, answer, record_id=record_id)


def render_pope(image: ImageInfo,
                obj: str,
                present: bool,
                rng: random.Random,
                instances: Sequence[Mapping] = (),
                record_id: Optional[str] = None) -> Dict:
    """A POPE record: 'Is there a {obj} ...?' answered 'Yes' or 'No'.

    Args:
        obj: object name without article ('red circle'); the article is added.
        present: whether the object is in the image (a real negative when False).
    """
    human = pick_template('pope', POPE_TEMPLATES, rng, obj=with_article(obj))
    return build_record('pope', image, instances, human, 'Yes' if present else 'No',
                        record_id=record_id)
