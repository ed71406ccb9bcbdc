"""Template banks: one per task, >= 20 distinct templates, placeholders used correctly."""
import random
import string

import pytest

from mmrefvlm.datasets import TASKS
from mmrefvlm.datasets.renderers import RENDERERS, TEMPLATES, ImageInfo
from mmrefvlm.trp import SPECIAL_TOKENS

FIELDS = {'expr': 'the red circle', 'question': 'What colour is it?', 'obj': 'a red circle',
          'classes': 'red circle, blue square', 'object': 'person', 'objects': 'people'}


def test_every_task_has_a_renderer_and_a_bank():
    assert set(RENDERERS) == set(TASKS)
    assert set(TEMPLATES) == set(TASKS)


@pytest.mark.parametrize('task', sorted(TASKS))
def test_bank_has_twenty_distinct_templates(task):
    bank = TEMPLATES[task]
    assert len(set(bank)) == len(bank) >= 20


@pytest.mark.parametrize('task', sorted(TASKS))
def test_templates_hold_image_once_and_region_iff_prompted(task):
    regions = 1 if TASKS[task].needs_prompts else 0
    for template in TEMPLATES[task]:
        filled = template.format(**FIELDS)
        assert filled.count('<image>') == 1, template
        assert filled.count('<region>') == regions, template
        for tag in SPECIAL_TOKENS:
            if tag not in ('<image>', '<region>'):
                assert tag not in filled, template


@pytest.mark.parametrize('task', sorted(TASKS))
def test_templates_use_only_known_fields(task):
    for template in TEMPLATES[task]:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
        assert names <= set(FIELDS), (template, names - set(FIELDS))


@pytest.mark.parametrize('task, expected', [
    ('rec', 'What are the coordinates of the red circle in the image <image>?'),
    ('res', 'Provide a segmentation mask for the red circle in the picture <image>.'),
    ('reg', 'For the given image <image>, can you provide a unique description of the area '
     '<region>?'),
    ('ig_mask', 'Please generate a mask based on the region <region> in the image <image>.'),
    ('fovd', 'Please detect bounding boxes in the image <image>.'),
    ('fovs', 'Please segment objects in the image <image>.'),
    ('keypoint', 'Please detect all the people and visualize all the keypoints in the image '
     '<image>.'),
    ('gcg_box', 'Please describe the image <image> and detect relevant bounding boxes.'),
    ('gcg_mask', 'Describe the setting of the image <image> and offer masks for each visible '
     'object.'),
    ('caption', '<image>Please describe the image in detail.'),
])
def test_paper_appendix_wording_is_in_the_bank(task, expected):
    assert expected in {t.format(**FIELDS) for t in TEMPLATES[task]}


def test_template_choice_follows_the_rng():
    image_args = dict(expression='the dog', targets=[0])
    image = ImageInfo('img', 'a.jpg', 10, 10)
    instances = [{'bbox': [1, 1, 3, 3], 'category': 'dog'}]
    first = [RENDERERS['rec'](image, instances, rng=random.Random(seed), **image_args)
             for seed in range(30)]
    again = [RENDERERS['rec'](image, instances, rng=random.Random(seed), **image_args)
             for seed in range(30)]
    assert first == again
    assert len({r['conversations'][0]['value'] for r in first}) > 5
