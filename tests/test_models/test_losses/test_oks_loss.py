"""OKS: against pycocotools' computeOks and a numpy formula; OKSLoss and KeypointOKSCost."""
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData
from pycocotools.cocoeval import COCOeval

from mmrefvlm.models.losses import KeypointOKSCost, OKSLoss, keypoint_oks
from mmrefvlm.registry import MODELS, TASK_UTILS

COCO_SIGMAS = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87,
                        .87, .89, .89]) / 10.0


def random_instances(num, seed):
    """``num`` targets (keypoints [num, 17, 3] px with v in {0, 1, 2}, xyxy boxes) and
    predictions a few pixels off."""
    rng = np.random.default_rng(seed)
    top_left = rng.uniform(0, 100, size=(num, 2))
    boxes = np.concatenate([top_left, top_left + rng.uniform(30, 100, size=(num, 2))], 1)
    xy = rng.uniform(boxes[:, None, :2], boxes[:, None, 2:], size=(num, 17, 2))
    vis = rng.integers(0, 3, size=(num, 17))
    vis[0, :3] = (0, 1, 2)
    target = np.concatenate([xy, vis[..., None]], -1)
    pred = xy + rng.normal(0, 6, size=xy.shape)
    return pred, target, boxes


def coco_oks(pred, target, boxes):
    """pycocotools' OKS matrix [n_pred, n_gt] with area = box area."""
    evaluator = COCOeval(iouType='keypoints')
    evaluator.params.kpt_oks_sigmas = COCO_SIGMAS
    widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    evaluator._gts[1, 1] = [
        dict(keypoints=t.reshape(-1).tolist(), area=float(w * h),
             bbox=[float(b[0]), float(b[1]), float(w), float(h)])
        for t, b, w, h in zip(target, boxes, widths, heights)]
    evaluator._dts[1, 1] = [
        dict(keypoints=np.concatenate([p, np.ones((17, 1))], 1).reshape(-1).tolist(),
             score=1.0 - 0.01 * i) for i, p in enumerate(pred)]
    return np.asarray(evaluator.computeOks(1, 1))


def test_pairwise_oks_equals_pycocotools():
    pred, target, boxes = random_instances(4, seed=0)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    ours = keypoint_oks(torch.tensor(pred), torch.tensor(target[..., :2]),
                        torch.tensor(target[..., 2] > 0), torch.tensor(areas),
                        torch.tensor(COCO_SIGMAS), pairwise=True)
    expected = coco_oks(pred, target, boxes)
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-6, atol=1e-9)
    assert 0.05 < expected.diagonal().mean() < 0.99  # the comparison is not vacuous


def test_oks_loss_by_hand_and_zero_at_target():
    pred, target, boxes = random_instances(3, seed=1)
    target[2, :, 2] = 0  # an instance with no labelled keypoint: left out of the average
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    loss = MODELS.build(dict(type='OKSLoss', sigmas=COCO_SIGMAS.tolist(), loss_weight=2.0))
    labelled = torch.tensor(target[..., 2] > 0)
    value = loss(torch.tensor(pred), torch.tensor(target[..., :2]), labelled,
                 torch.tensor(areas))
    # numpy: exp(-d² / (2 s² k²)), k = 2σ, mean over labelled keypoints, 1 - OKS per instance
    dist2 = ((pred - target[..., :2]) ** 2).sum(-1)
    sim = np.exp(-dist2 / (2 * areas[:, None] * (2 * COCO_SIGMAS[None]) ** 2))
    lab = target[..., 2] > 0
    oks = [(sim[i] * lab[i]).sum() / lab[i].sum() for i in range(2)]
    expected = 2.0 * np.mean([1 - o for o in oks])
    assert value.item() == pytest.approx(expected, rel=1e-5)
    exact = loss(torch.tensor(target[..., :2]), torch.tensor(target[..., :2]), labelled,
                 torch.tensor(areas))
    assert exact.item() == pytest.approx(0.0, abs=1e-7)


def test_oks_loss_gradient_pulls_towards_the_target():
    _, target, boxes = random_instances(2, seed=2)
    areas = torch.tensor((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    gt = torch.tensor(target[..., :2])
    pred = (gt + 3.0).requires_grad_()
    loss = OKSLoss(COCO_SIGMAS.tolist())(pred, gt, torch.ones(2, 17, dtype=torch.bool), areas)
    loss.backward()
    assert bool((pred.grad > 0).all())


def test_oks_loss_rejects_wrong_keypoint_count():
    loss = OKSLoss([0.1, 0.1])
    with pytest.raises(ValueError, match='K = 2'):
        loss(torch.zeros(1, 3, 2), torch.zeros(1, 3, 2), torch.ones(1, 3).bool(), torch.ones(1))


def test_keypoint_oks_cost_prefers_the_right_instance():
    pred, target, boxes = random_instances(3, seed=3)
    cost = TASK_UTILS.build(dict(type='KeypointOKSCost', sigmas=COCO_SIGMAS.tolist(),
                                 weight=3.0))
    assert isinstance(cost, KeypointOKSCost)
    matrix = cost(InstanceData(keypoints=torch.tensor(pred[[2, 0, 1]]).float()),
                  InstanceData(keypoints=torch.tensor(target).float(),
                               bboxes=torch.tensor(boxes).float()))
    expected = -3.0 * coco_oks(pred[[2, 0, 1]], target, boxes)
    np.testing.assert_allclose(matrix.numpy(), expected, rtol=1e-4, atol=1e-6)
    assert matrix.argmin(1).tolist() == [2, 0, 1]
