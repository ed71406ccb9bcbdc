"""REC, RES and interactive grounding against hand-computed IoUs."""
import numpy as np
import pytest

from mmrefvlm.evaluation.metrics import InteractiveGroundingMetric, RECMetric, RESMetric


def test_rec_accuracy_uses_first_box_and_counts_misses(make_sample, evaluate):
    gt = [[0, 0, 10, 8]]  # area 80
    samples = [
        make_sample('rec', gt_boxes=gt, pred_boxes=[[0, 0, 10, 4]]),  # IoU 40/80 = 0.5: hit
        make_sample('rec', gt_boxes=gt, pred_boxes=[[0, 0, 10, 3.9], [0, 0, 10, 8]]),
        make_sample('rec', gt_boxes=gt),  # nothing predicted: miss, IoU 0
        make_sample('rec', gt_boxes=gt, pred_boxes=[[5, 0, 15, 8]]),  # 40 / 120
    ]
    out = evaluate([RECMetric()], samples)
    assert out['rec/acc@0.5'] == pytest.approx(1 / 4)
    assert out['rec/miou'] == pytest.approx((0.5 + 39 / 80 + 0 + 40 / 120) / 4)


def _masks(*slices, shape=(8, 10)):
    out = np.zeros((len(slices), ) + shape, dtype=bool)
    for i, (rows, cols) in enumerate(slices):
        out[i, rows, cols] = True
    return out


def test_res_ciou_and_giou(make_sample, evaluate):
    # sample 1: gt 4x4 = 16 px, pred = two masks whose union is the left 4x2 of gt + 4x2 outside
    gt1 = _masks((slice(0, 4), slice(0, 4)))
    pred1 = _masks((slice(0, 4), slice(0, 2)), (slice(0, 4), slice(4, 6)))
    # I = 8, U = 16 + 8 = 24
    # sample 2: two gt masks (union 12 px), no prediction: I = 0, U = 12
    gt2 = _masks((slice(0, 2), slice(0, 3)), (slice(4, 6), slice(0, 3)))
    # sample 3: perfect: I = U = 6
    gt3 = _masks((slice(2, 4), slice(5, 8)))
    samples = [make_sample('res', gt_masks=gt1, pred_masks=pred1),
               make_sample('res', gt_masks=gt2),
               make_sample('res', gt_masks=gt3, pred_masks=gt3)]
    out = evaluate([RESMetric()], samples)
    assert out['res/ciou'] == pytest.approx((8 + 0 + 6) / (24 + 12 + 6))
    assert out['res/giou'] == pytest.approx((8 / 24 + 0 + 1) / 3)


def test_res_rejects_predictions_not_in_original_pixels(make_sample, evaluate):
    gt = _masks((slice(0, 4), slice(0, 4)))
    bad = make_sample('res', gt_masks=gt, pred_masks=np.ones((1, 16, 20), dtype=bool))
    with pytest.raises(ValueError, match='original image size'):
        evaluate([RESMetric()], [bad])


def test_interactive_grounding_per_prompt_type(make_sample, evaluate):
    gt_mask = _masks((slice(0, 4), slice(0, 4)))
    half = _masks((slice(0, 4), slice(0, 2)))
    samples = [
        make_sample('ig_mask', gt_masks=gt_mask, pred_masks=half, prompt_types=['point']),
        make_sample('ig_mask', gt_masks=gt_mask, pred_masks=gt_mask, prompt_types=['box']),
        make_sample('ig_mask', gt_masks=gt_mask, prompt_types=['point']),
        make_sample('ig_box', gt_boxes=[[0, 0, 4, 4]], pred_boxes=[[2, 0, 6, 4]],
                    prompt_types=['scribble']),  # I = 8, U = 24
        make_sample('ig_box', gt_boxes=[[0, 0, 4, 4]], prompt_types=['mask']),  # I 0, U 16
    ]
    out = evaluate([InteractiveGroundingMetric()], samples)
    assert out['ig_mask/point/miou'] == pytest.approx((0.5 + 0) / 2)
    assert out['ig_mask/point/ciou'] == pytest.approx(8 / 32)
    assert out['ig_mask/box/miou'] == pytest.approx(1.0)
    assert out['ig_mask/miou'] == pytest.approx(0.5)
    assert out['ig_mask/ciou'] == pytest.approx((8 + 16) / 48)
    assert out['ig_box/scribble/miou'] == pytest.approx(8 / 24)
    assert out['ig_box/mask/miou'] == 0.0
    assert out['ig_box/ciou'] == pytest.approx(8 / 40)
