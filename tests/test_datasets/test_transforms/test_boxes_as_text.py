"""Stage 1's numbers-in-text answers (``RenderConversation(boxes_as_text=True)``), on every task
family whose records carry boxes."""
import json
import os.path as osp
import re

import pytest

from mmrefvlm.datasets import TASKS
from mmrefvlm.datasets.transforms.conversation import RenderConversation, boxes_as_text

BOX = re.compile(r'\[(\d\.\d{3}),(\d\.\d{3}),(\d\.\d{3}),(\d\.\d{3})\]')


def test_boxes_as_text_writes_normalised_corners_per_ref():
    answer = ('<Phrase>dogs</Phrase>(<Unit>box</Unit>[0]<REF>[1]<REF>) and '
              '<Phrase>a cat</Phrase>(<Unit>box</Unit>[0]<REF>)')
    boxes = [[0, 0, 10, 10], [32, 12, 32, 36], [64, 0, 100, 48]]
    text = boxes_as_text(answer, refs=[1, 0, 2], boxes=boxes, width=128, height=48)
    assert text == ('<Phrase>dogs</Phrase>[0.250,0.250,0.500,1.000];[0.000,0.000,0.078,0.208]'
                    ' and <Phrase>a cat</Phrase>[0.500,0.000,1.000,1.000]')  # clipped to 1


def _records_by_family(root):
    with open(osp.join(root, 'train.jsonl')) as f:
        records = [json.loads(line) for line in f]
    by_family = {}
    for record in records:
        refs = [r for turn in record['conversations'] for r in turn.get('refs') or []]
        if refs and all('bbox' in record['instances'][i] for i in refs):
            by_family.setdefault(TASKS[record['task']].family, record)
    return by_family


@pytest.mark.parametrize('family', ['referring_expression', 'interactive_grounding',
                                    'grounded_conversation', 'open_vocabulary',
                                    'keypoint_detection'])
def test_every_box_carrying_family_renders_numbers_and_no_targets(family, tiny_data):
    record = _records_by_family(tiny_data)[family]
    results = dict(record, record_id=record['id'])
    rendered = RenderConversation(boxes_as_text=True).transform(dict(results))
    text = ''.join(segment.text for segment in rendered['text_segments'])
    assert '<REF>' not in text and '<Unit>' not in text
    assert rendered['target_indices'] == [] and rendered['target_group_ids'] == []
    assert 'Unit decode (False)' in text  # nothing for a decoder to read
    refs = [r for turn in record['conversations'] if turn['from'] == 'gpt'
            for r in turn.get('refs') or []]
    written = [tuple(map(float, match)) for match in BOX.findall(text)]
    expected = []
    for i in refs:
        x, y, w, h = record['instances'][i]['bbox']
        corners = (x / record['width'], y / record['height'], (x + w) / record['width'],
                   (y + h) / record['height'])
        expected.append(tuple(round(min(max(v, 0.0), 1.0), 3) for v in corners))
    assert written == pytest.approx(expected, abs=6e-4)
    # the default renders <REF> targets as before
    default = RenderConversation().transform(dict(results))
    assert len(default['target_indices']) == len(refs)
