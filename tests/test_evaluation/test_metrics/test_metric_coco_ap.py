"""FOVD/FOVS mAP-similarity, OVD/OVS and GCG AP50 against direct pycocotools COCOeval calls on
the hand-written fixture ``tests/data/metrics/ovd_scenes.json``."""
import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_utils
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mmrefvlm.evaluation.metrics import FOVDMetric, GCGMetric, OVDMetric
from mmrefvlm.evaluation.metrics.text_encoders import build_text_encoder

FIXTURE = json.loads((Path(__file__).parents[2] / 'data' / 'metrics' /
                      'ovd_scenes.json').read_text())
CLASSES = FIXTURE['classes']
H, W = 40, 50


def box_mask(bbox):
    x, y, w, h = bbox
    mask = np.zeros((H, W), dtype=bool)
    mask[y:y + h, x:x + w] = True
    return mask


def xyxy(bbox):
    x, y, w, h = bbox
    return [x, y, x + w, y + h]


def direct_coco_stats(iou_type, predictions, image_ids=None):
    """COCOeval on the fixture; ``predictions``: (image_id, class, bbox xywh, score)."""
    def region(bbox):
        if iou_type == 'segm':
            rle = mask_utils.encode(np.asfortranarray(box_mask(bbox).astype(np.uint8)))
            return dict(segmentation=rle)
        return dict(bbox=list(map(float, bbox)))

    gt = COCO()
    gt.dataset = dict(
        images=FIXTURE['images'],
        categories=[dict(id=i + 1, name=c) for i, c in enumerate(CLASSES)],
        annotations=[dict(id=i + 1, image_id=a['image_id'],
                          category_id=CLASSES.index(a['category']) + 1, iscrowd=0,
                          area=float(a['bbox'][2] * a['bbox'][3]),
                          bbox=list(map(float, a['bbox'])), **({} if iou_type == 'bbox' else
                                                              region(a['bbox'])))
                     for i, a in enumerate(FIXTURE['annotations'])])
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes([dict(image_id=i, category_id=CLASSES.index(c) + 1, score=s,
                              **region(b)) for i, c, b, s in predictions])
        evaluator = COCOeval(gt, dt, iou_type)
        if image_ids is not None:
            evaluator.params.imgIds = image_ids
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats


def fixture_samples(make_sample, task):
    samples = []
    for image in FIXTURE['images']:
        anns = [a for a in FIXTURE['annotations'] if a['image_id'] == image['id']]
        preds = [p for p in FIXTURE['predictions'] if p['image_id'] == image['id']]
        phrases = sorted({p['phrase'] for p in preds})
        masks = task in ('fovs', 'ovs')
        samples.append(make_sample(
            task, ori_shape=(H, W), img_id=image['id'],
            gt_boxes=[xyxy(a['bbox']) for a in anns],
            gt_masks=np.stack([box_mask(a['bbox']) for a in anns]) if masks else None,
            gt_labels=[CLASSES.index(a['category']) for a in anns],
            pred_boxes=[xyxy(p['bbox']) for p in preds] if not masks else None,
            pred_masks=(np.array([box_mask(p['bbox']) for p in preds]).reshape(-1, H, W)
                        if masks else None),
            pred_scores=[0.1 * (i + 1) for i in range(len(preds))],  # ignored by mAP-sim
            pred_labels=[phrases.index(p['phrase']) for p in preds],
            pred_phrases=phrases))
    return samples


def exact_class(phrase):
    name = phrase.lower().strip(' .')
    return name if name in CLASSES else None


@pytest.mark.parametrize('task, iou_type', [('ovd', 'bbox'), ('ovs', 'segm')])
def test_ovd_matches_direct_cocoeval_over_all_images(make_sample, evaluate, task, iou_type):
    out = evaluate([OVDMetric()], fixture_samples(make_sample, task),
                   dataset_meta=dict(classes=CLASSES))
    preds = [(p['image_id'], exact_class(p['phrase']), p['bbox'], 1.0)
             for p in FIXTURE['predictions'] if exact_class(p['phrase'])]
    stats = direct_coco_stats(iou_type, preds)
    assert out[f'{task}/mAP'] == pytest.approx(stats[0])
    assert out[f'{task}/mAP_50'] == pytest.approx(stats[1])
    assert out[f'{task}/AR_100'] == pytest.approx(stats[8])
    assert 0 < out[f'{task}/mAP_50'] < 1
    # image 3 has ground truth but no prediction: AP over predicted images only is higher
    assert direct_coco_stats(iou_type, preds, image_ids=[1, 2])[1] > out[f'{task}/mAP_50']


def test_fovd_exact_encoder_equals_ovd(make_sample, evaluate):
    samples = fixture_samples(make_sample, 'fovd')
    fovd = evaluate([FOVDMetric(text_encoder=dict(type='exact'), classes=CLASSES)], samples)
    ovd = evaluate([OVDMetric(tasks='fovd', classes=CLASSES)], samples)
    assert fovd == ovd and 'fovd/mAP' in fovd


def test_fovd_minilm_similarity_is_the_score(make_sample, evaluate):
    encoder = build_text_encoder(dict(type='minilm'))
    similarity = encoder.similarity(['red circle'], ['red circles', 'blue square'])[0]
    assert similarity[0] > similarity[1]
    phrases = [p['phrase'] for p in FIXTURE['predictions']]
    sim = encoder.similarity(phrases, CLASSES)
    assert [CLASSES[i] for i in sim.argmax(1)] == [
        p['minilm_class'] for p in FIXTURE['predictions']]
    preds = [(p['image_id'], p['minilm_class'], p['bbox'], float(sim[i].max()))
             for i, p in enumerate(FIXTURE['predictions'])]
    stats = direct_coco_stats('segm', preds)
    out = evaluate([FOVDMetric(text_encoder=dict(type='minilm'))],
                   fixture_samples(make_sample, 'fovs'), dataset_meta=dict(classes=CLASSES))
    assert out['fovs/mAP'] == pytest.approx(stats[0])
    assert out['fovs/mAP_50'] == pytest.approx(stats[1])


def test_gcg_ap50_miou_recall(make_sample, evaluate):
    # image 1 of the fixture as a grounded caption: 3 gt regions, <REF> order = row order
    gt_answer = ('A <Phrase>red circle</Phrase>(<Unit>box</Unit>[0]<REF>) beside two '
                 '<Phrase>blue squares</Phrase>(<Unit>box</Unit>[0]<REF>[1]<REF>).')
    gt_boxes = [[2, 2, 12, 12], [20, 4, 32, 16], [34, 20, 44, 34]]
    pred_boxes = [[2, 2, 12, 12],    # IoU 1 with gt 0, phrase 'red circle': match
                  [20, 4, 32, 14],   # IoU 120/144 with gt 1, phrase 'blue squares': match
                  [34, 20, 44, 34]]  # IoU 1 with gt 2 but phrase 'circle': no recall match
    sample1 = make_sample('gcg_box', ori_shape=(H, W), gt_boxes=gt_boxes, gt_answer=gt_answer,
                          pred_boxes=pred_boxes, pred_scores=[0.9, 0.8, 0.7],
                          pred_labels=[0, 1, 2],
                          pred_phrases=['red circle', 'blue squares', 'circle'],
                          pred_text='A red circle beside two blue squares.')
    # a second image where nothing was predicted: its gt region is a miss everywhere
    sample2 = make_sample('gcg_box', ori_shape=(H, W), gt_boxes=[[5, 5, 25, 21]],
                          gt_answer='A <Phrase>triangle</Phrase>(<Unit>box</Unit>[0]<REF>).',
                          pred_text='A triangle.')
    out = evaluate([GCGMetric(text_encoder=dict(type='exact'), caption_scores=('CIDEr', ))],
                   [sample1, sample2])
    assert out['gcg_box/mIoU'] == pytest.approx((1 + 120 / 144 + 1 + 0) / 4)
    assert out['gcg_box/recall'] == pytest.approx(2 / 4)
    gt = COCO()
    gt.dataset = dict(
        images=[dict(id=1, height=H, width=W), dict(id=2, height=H, width=W)],
        categories=[dict(id=1, name='object')],
        annotations=[dict(id=i + 1, image_id=img, category_id=1, iscrowd=0,
                          bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1))
                     for i, (img, (x1, y1, x2, y2)) in enumerate(
                         [(1, b) for b in gt_boxes] + [(2, [5, 5, 25, 21])])])
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes([dict(image_id=1, category_id=1, score=s,
                              bbox=[x1, y1, x2 - x1, y2 - y1])
                         for s, (x1, y1, x2, y2) in zip([0.9, 0.8, 0.7], pred_boxes)])
        evaluator = COCOeval(gt, dt, 'bbox')
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    assert out['gcg_box/AP50'] == pytest.approx(evaluator.stats[1])
    assert out['gcg_box/CIDEr'] > 0


def test_gcg_rejects_ref_count_mismatch(make_sample, evaluate):
    sample = make_sample('gcg_mask', gt_boxes=[[0, 0, 2, 2], [2, 2, 4, 4]],
                         gt_masks=np.zeros((2, 8, 10), dtype=bool),
                         gt_answer='<Phrase>dog</Phrase>(<Unit>mask</Unit>[0]<REF>)')
    with pytest.raises(ValueError, match='1 <REF> tokens but gt_instances has 2 rows'):
        evaluate([GCGMetric(text_encoder=dict(type='exact'), caption_scores=())], [sample])
