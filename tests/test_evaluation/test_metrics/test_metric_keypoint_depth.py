"""Keypoint OKS AP against a direct COCOeval call; depth errors against numpy."""
import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mmrefvlm.evaluation.metrics import DepthMetric, KeypointMetric

SIGMAS = [0.05, 0.08, 0.1]
GT = {1: [([[4, 4, 2], [10, 6, 2], [8, 14, 1]], [2, 2, 14, 16]),
          ([[30, 8, 2], [36, 8, 0], [33, 20, 2]], [26, 4, 40, 24])],
      2: [([[5, 5, 2], [15, 5, 2], [10, 15, 2]], [2, 2, 18, 18])],
      3: [([[20, 20, 2], [25, 22, 2], [22, 30, 2]], [18, 18, 28, 32])]}  # image 3: no pred
PRED = {1: [([[4.5, 4, 1], [10, 7, 1], [8, 13, 1]], 0.9),
            ([[31, 9, 1], [0, 0, 0], [34, 22, 1]], 0.6),
            ([[40, 30, 1], [41, 31, 1], [42, 32, 1]], 0.8)],  # false positive
        2: [([[6, 5, 1], [14, 6, 1], [10, 16, 1]], 0.7)]}


def direct_oks_stats():
    gt = COCO()
    anns = []
    for image_id, people in GT.items():
        for kpts, (x1, y1, x2, y2) in people:
            kpts = np.asarray(kpts, dtype=float)
            anns.append(dict(id=len(anns) + 1, image_id=image_id, category_id=1, iscrowd=0,
                             keypoints=kpts.reshape(-1).tolist(),
                             num_keypoints=int((kpts[:, 2] > 0).sum()),
                             bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1)))
    gt.dataset = dict(images=[dict(id=i) for i in GT], annotations=anns,
                      categories=[dict(id=1, name='person')])
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes([dict(image_id=i, category_id=1, score=s,
                              keypoints=np.asarray(k, dtype=float).reshape(-1).tolist())
                         for i, people in PRED.items() for k, s in people])
        evaluator = COCOeval(gt, dt, 'keypoints')
        evaluator.params.kpt_oks_sigmas = np.array(SIGMAS)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats


def keypoint_samples(make_sample):
    samples = []
    for image_id, people in GT.items():
        preds = PRED.get(image_id, [])
        samples.append(make_sample(
            'keypoint', ori_shape=(40, 50), img_id=image_id,
            gt_boxes=[box for _, box in people],
            gt_keypoints=np.array([k for k, _ in people], dtype=float),
            pred_keypoints=np.array([k for k, _ in preds], dtype=float).reshape(-1, 3, 3),
            pred_scores=[s for _, s in preds]))
    return samples


def test_keypoint_oks_ap_matches_cocoeval(make_sample, evaluate):
    stats = direct_oks_stats()
    out = evaluate([KeypointMetric()], keypoint_samples(make_sample),
                   dataset_meta=dict(keypoint_sigmas=SIGMAS))
    assert out['keypoint/AP'] == pytest.approx(stats[0])
    assert out['keypoint/AP_50'] == pytest.approx(stats[1])
    assert out['keypoint/AR'] == pytest.approx(stats[5])
    assert 0 < out['keypoint/AP'] < 1


def test_keypoint_sigmas_must_match(make_sample, evaluate):
    with pytest.raises(ValueError, match='3 keypoints but 2 sigmas'):
        evaluate([KeypointMetric(keypoint_sigmas=[0.1, 0.1])], keypoint_samples(make_sample))


def test_depth_errors_per_image_then_mean(make_sample, evaluate):
    rng = np.random.default_rng(0)
    gts = [rng.uniform(0.5, 10, (8, 10)).astype(np.float32) for _ in range(3)]
    gts[0][:2] = 0  # invalid pixels
    preds = [gts[0] * 1.1, gts[1] + rng.normal(0, 0.5, (8, 10)).astype(np.float32), None]
    samples = [make_sample('depth', gt_depth=g, pred_depth=p) for g, p in zip(gts, preds)]
    out = evaluate([DepthMetric()], samples)

    def errors(pred, gt):
        valid = gt > 0
        p, g = np.clip(pred[valid].astype(np.float64), 1e-3, None), gt[valid].astype(np.float64)
        return (np.mean(np.abs(p - g) / g), np.sqrt(np.mean((p - g) ** 2)),
                np.mean(np.maximum(p / g, g / p) < 1.25))

    expected = np.mean([errors(p if p is not None else np.zeros_like(g), g)
                        for p, g in zip(preds, gts)], axis=0)
    assert out['depth/abs_rel'] == pytest.approx(expected[0])
    assert out['depth/rmse'] == pytest.approx(expected[1])
    assert out['depth/delta1'] == pytest.approx(expected[2])
    assert errors(preds[0], gts[0])[2] == 1.0  # 10 % off everywhere: all within 1.25


def test_depth_prediction_must_be_in_original_pixels(make_sample, evaluate):
    gt = np.ones((8, 10), dtype=np.float32)
    sample = make_sample('depth', gt_depth=gt, pred_depth=np.ones((16, 20), dtype=np.float32))
    with pytest.raises(ValueError, match='original image size'):
        evaluate([DepthMetric()], [sample])
