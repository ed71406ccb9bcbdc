"""Predictions as JSON: fields read by name, masks as RLE, only the units each ref asked for."""
import json

import numpy as np
import pycocotools.mask as mask_utils
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData, PixelData

from mmrefvlm.apis import prediction_to_dict

TEXT = ('<Phrase>the dog</Phrase>(<Unit>mask</Unit>[0]<REF>) chases '
        '<Phrase>a cat</Phrase>(<Unit>box</Unit>[0]<REF>)')


def scripted_sample(height=6, width=8, depth=False) -> DetDataSample:
    sample = DetDataSample(metainfo=dict(task='res', ori_shape=(height, width)))
    sample.pred_text = TEXT
    sample.pred_triplets = [('the dog', ('mask', ), 1), ('a cat', ('box', ), 1)]
    masks = torch.zeros(2, height, width, dtype=torch.bool)
    masks[0, 1:3, 2:5] = True
    sample.pred_instances = InstanceData(
        bboxes=torch.tensor([[2., 1., 5., 3.], [0.5, 0.25, 4.125, 5.]]), masks=masks,
        scores=torch.tensor([0.9, 0.4]), group_ids=torch.tensor([0, 1]),
        labels=torch.tensor([0, 1]))
    if depth:
        sample.pred_depth_map = PixelData(data=torch.full((1, height, width), 2.5))
    return sample


def test_each_ref_has_its_phrase_box_and_the_fields_of_its_units():
    result = prediction_to_dict(scripted_sample())
    json.dumps(result)
    assert result['answer'] == 'the dog chases a cat' and result['text'] == TEXT
    assert result['task'] == 'res'
    assert result['triplets'] == [dict(phrase='the dog', units=['mask'], num_refs=1),
                                  dict(phrase='a cat', units=['box'], num_refs=1)]
    dog, cat = result['refs']
    assert dog['phrase'] == 'the dog' and dog['bbox'] == [2.0, 1.0, 5.0, 3.0]
    assert dog['score'] == 0.9 and dog['triplet'] == 0
    decoded = mask_utils.decode(dict(size=dog['mask']['size'],
                                     counts=dog['mask']['counts'].encode()))
    assert decoded.sum() == 6 and decoded[1:3, 2:5].all()
    assert 'mask' not in cat and cat['bbox'] == [0.5, 0.25, 4.12, 5.0]
    assert 'depth' not in result


def test_depth_maps_come_back_in_metres():
    result = prediction_to_dict(scripted_sample(depth=True))
    assert np.array(result['depth']).shape == (6, 8) and result['depth'][0][0] == 2.5
