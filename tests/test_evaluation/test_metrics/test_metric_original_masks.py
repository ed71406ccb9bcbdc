"""Mask metrics score against the annotation at the original size (DESIGN §7).

Real records (polygons with fractional vertices, an RLE) of a 333 × 517 image go through the
real test pipeline onto canvases of 128 and 512 px (scales 0.2476… and 0.9903…, where resizing a
mask to the canvas and back would lose pixels); the exact annotation masks, fed back as
predictions, must then score exactly 1.0 on every mask metric.
"""
import json

import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from PIL import Image

from mmrefvlm.datasets.renderers.prompts import encode_rle
from mmrefvlm.datasets.transforms import refvlm_pipeline, render_conversation
from mmrefvlm.datasets.transforms.rasterize import decode_segmentation
from mmrefvlm.evaluation.metrics import (FOVDMetric, GCGMetric, InteractiveGroundingMetric,
                                         KeypointMetric, RESMetric)
from mmrefvlm.tokenization import train_tokenizer
from mmrefvlm.registry import DATASETS
from mmrefvlm.trp import parse_answer

HEIGHT, WIDTH = 333, 517
CLASSES = ['kite', 'ball', 'person']
SIGMAS = [0.05, 0.08, 0.09]


def _disk_rle() -> dict:
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    return encode_rle((xx - 371.3) ** 2 + (yy - 201.6) ** 2 <= 77.7 ** 2)


KITE = dict(bbox=[40.3, 50.7, 159.9, 199.7], category='kite',
            segmentation=[[40.3, 50.7, 200.2, 60.1, 180.9, 250.4, 55.5, 230.8]])
BALL = dict(bbox=[293.6, 123.9, 156.4, 155.4], category='ball', segmentation=_disk_rle())
PERSON = dict(bbox=[101.5, 30.25, 87.75, 290.5], category='person',
              segmentation=[[101.5, 30.25, 189.25, 30.25, 170.5, 320.75, 120.5, 320.75]],
              keypoints=[140.5, 50.25, 2, 150.75, 160.5, 2, 130.25, 300.5, 1])


def _record(rid, task, instances, question, answer, refs, **extra):
    return dict(id=rid, task=task, image='scene.png', width=WIDTH, height=HEIGHT,
                instances=instances, conversations=[
                    {'from': 'human', 'value': f'<image>\n{question}'},
                    {'from': 'gpt', 'value': answer, 'refs': refs}], **extra)


def _mask(phrase):
    return f'<Phrase>{phrase}</Phrase>(<Unit>mask</Unit>[0]<REF>)'


RECORDS = [
    _record('res_kite', 'res', [KITE, BALL], 'Segment the kite.', _mask('the kite'), [0]),
    _record('res_ball', 'res', [KITE, BALL], 'Segment the ball.', _mask('the ball'), [1]),
    _record('gcg_0', 'gcg_mask', [KITE, BALL], 'Describe the image with masks.',
            f'A {_mask("kite")} flies over a {_mask("ball")}.', [0, 1]),
    _record('ig_0', 'ig_mask', [KITE, BALL], 'Segment what is at <region>.', _mask('ball'),
            [1], prompts=[dict(type='point', data=[371, 201])]),
    _record('fovs_0', 'fovs', [KITE, BALL], 'Segment every object.',
            f'{_mask("kite")}, {_mask("ball")}', [0, 1]),
    _record('kpt_0', 'keypoint', [PERSON], 'Find the keypoints of the person.',
            '<Phrase>person</Phrase>(<Unit>keypoint</Unit>[0]<REF>)', [0]),
]


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    init_default_scope('mmrefvlm')
    root = tmp_path_factory.mktemp('original_masks')
    Image.fromarray(np.full((HEIGHT, WIDTH, 3), 90, np.uint8)).save(root / 'scene.png')
    (root / 'test.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in RECORDS))
    (root / 'meta.json').write_text(json.dumps(dict(
        classes=CLASSES, keypoint_names=['head', 'hip', 'foot'], keypoint_sigmas=SIGMAS,
        skeleton=[[0, 1], [1, 2]])))
    texts = [render_conversation(r['task'], r['conversations']).text for r in RECORDS]
    train_tokenizer(texts * 2, str(root / 'tokenizer'), vocab_size=300)
    return root


def _perfect_prediction(sample):
    """Attach the record's own annotation (original pixels) as the prediction."""
    record = next(r for r in RECORDS if r['id'] == sample.img_id)
    targets = [record['instances'][i] for i in record['conversations'][-1]['refs']]
    masks = np.stack([decode_segmentation(t['segmentation'], HEIGHT, WIDTH) for t in targets])
    pred = InstanceData(
        masks=torch.from_numpy(masks).bool(),
        bboxes=torch.tensor([[x, y, x + w, y + h] for x, y, w, h in
                             (t['bbox'] for t in targets)]),
        scores=torch.ones(len(targets)), labels=torch.arange(len(targets)))
    if record['task'] == 'keypoint':
        pred.keypoints = torch.tensor([t['keypoints'] for t in targets]).view(-1, 3, 3)
    sample.pred_instances = pred
    phrases = {}
    for triplet in parse_answer(sample.gt_answer):
        phrases.update(dict.fromkeys(triplet.ref_ordinals, triplet.phrase))
    sample.pred_phrases = [phrases[r] for r in range(len(targets))]
    sample.pred_text = sample.gt_answer
    return sample


@pytest.mark.parametrize('canvas', [128, 512])
def test_perfect_masks_score_exactly_one_through_the_pipeline(data_root, evaluate, canvas):
    tokenizer = dict(type='generated', path=str(data_root / 'tokenizer'))
    dataset = DATASETS.build(dict(
        type='VTInstructDataset', data_root=str(data_root), ann_file='test.jsonl',
        data_prefix=dict(img_path=''), test_mode=True, on_bad_record='raise',
        serialize_data=False, pipeline=refvlm_pipeline(canvas, tokenizer, test_mode=True)))
    samples = [_perfect_prediction(dataset[i]['data_samples']) for i in range(len(dataset))]
    assert samples[0].gt_instances.masks.masks.shape[1:] == (canvas, canvas)
    exact = dict(type='exact')
    metrics = [RESMetric(), GCGMetric(text_encoder=exact, caption_scores=()),
               InteractiveGroundingMetric(tasks='ig_mask'),
               FOVDMetric(text_encoder=exact, classes=CLASSES, tasks='fovs'),
               KeypointMetric(keypoint_sigmas=SIGMAS)]
    out = evaluate(metrics, samples)
    overlaps = ['res/ciou', 'res/giou', 'gcg_mask/mIoU', 'gcg_mask/recall', 'ig_mask/miou',
                'ig_mask/ciou', 'ig_mask/point/miou', 'ig_mask/point/ciou']
    assert {key: out[key] for key in overlaps} == dict.fromkeys(overlaps, 1.0)
    # COCOeval's precision is tp / (tp + fp + spacing(1)): a perfect AP is 1 - 2e-16
    for key in ('gcg_mask/AP50', 'fovs/mAP', 'fovs/mAP_50', 'fovs/mAP_75', 'keypoint/AP'):
        assert out[key] == pytest.approx(1.0, abs=1e-12), key


def test_keypoint_scale_is_the_annotated_mask_area(data_root):
    tokenizer = dict(type='generated', path=str(data_root / 'tokenizer'))
    dataset = DATASETS.build(dict(
        type='VTInstructDataset', data_root=str(data_root), ann_file='test.jsonl',
        data_prefix=dict(img_path=''), test_mode=True, tasks=['keypoint'],
        serialize_data=False, pipeline=refvlm_pipeline(128, tokenizer, test_mode=True)))
    sample = _perfect_prediction(dataset[0]['data_samples']).to_dict()
    (gt, ) = KeypointMetric(keypoint_sigmas=SIGMAS).process_sample(sample)['gt']
    person = decode_segmentation(PERSON['segmentation'], HEIGHT, WIDTH)
    assert gt['area'] == float(mask_utils.area(encode_rle(person)))


def test_samples_without_original_masks_are_refused(make_sample):
    sample = make_sample('res', gt_masks=np.ones((1, 8, 10), bool)).to_dict()
    del sample['gt_mask_rles']
    with pytest.raises(ValueError, match="no 'gt_mask_rles'"):
        RESMetric().process_sample(sample)
