"""SILogLoss: against numpy, global-scale invariance at λ = 1 (and not below), valid pixels."""
import numpy as np
import pytest
import torch

from mmrefvlm.models.losses import SILogLoss
from mmrefvlm.registry import MODELS


def numpy_silog(pred_depth, target, lam):
    """Eigen et al. Eq. 4 on the pixels with target > 0, per map, mean over maps."""
    values = []
    for p, t in zip(pred_depth, target):
        valid = t > 0
        g = np.log(p[valid]) - np.log(t[valid])
        values.append((g ** 2).mean() - lam * g.mean() ** 2)
    return float(np.mean(values))


def random_maps(seed):
    rng = np.random.default_rng(seed)
    target = rng.uniform(0.5, 10.0, size=(3, 12, 10))
    target[rng.uniform(size=target.shape) < 0.3] = 0.0  # invalid pixels
    pred = target * np.exp(rng.normal(0, 0.3, size=target.shape)) + 0.1
    return pred, target


@pytest.mark.parametrize('lam', [0.0, 0.5, 0.85, 1.0])
def test_matches_numpy(lam):
    pred, target = random_maps(0)
    loss = MODELS.build(dict(type='SILogLoss', lambda_=lam, loss_weight=1.5))
    value = loss(torch.tensor(np.log(pred)), torch.tensor(target))
    assert value.item() == pytest.approx(1.5 * numpy_silog(pred, target, lam), rel=1e-5)


def test_global_scale_invariance_only_at_lambda_one():
    pred, target = random_maps(1)
    log_pred = torch.tensor(np.log(pred))
    scaled = log_pred + np.log(3.7)
    invariant = SILogLoss(lambda_=1.0)
    assert invariant(scaled, torch.tensor(target)).item() == pytest.approx(
        invariant(log_pred, torch.tensor(target)).item(), rel=1e-5)
    default = SILogLoss()
    assert default.lambda_ == 0.85
    assert default(scaled, torch.tensor(target)).item() > \
        default(log_pred, torch.tensor(target)).item() + 0.1


def test_zero_at_target_and_valid_mask_excludes_pixels():
    pred, target = random_maps(2)
    target_t = torch.tensor(target)
    loss = SILogLoss(lambda_=0.5)
    exact = torch.where(target_t > 0, target_t.log(), torch.zeros_like(target_t))
    assert loss(exact, target_t).item() == pytest.approx(0.0, abs=1e-12)
    # garbage outside `valid` does not matter
    valid = torch.zeros_like(target_t, dtype=torch.bool)
    valid[:, :6] = True
    noisy = exact.clone()
    noisy[:, 6:] += 5.0
    assert loss(noisy, target_t, valid).item() == pytest.approx(0.0, abs=1e-12)
    assert loss(noisy, target_t).item() > 1.0


def test_maps_without_valid_pixels_are_left_out_and_all_invalid_is_zero():
    pred, target = random_maps(3)
    target[1] = 0.0
    loss = SILogLoss(lambda_=0.85)
    value = loss(torch.tensor(np.log(pred)), torch.tensor(target))
    expected = numpy_silog(pred[[0, 2]], target[[0, 2]], 0.85)
    assert value.item() == pytest.approx(expected, rel=1e-5)
    log_pred = torch.tensor(np.log(pred), requires_grad=True)
    zero = loss(log_pred, torch.zeros_like(log_pred))
    zero.backward()
    assert zero.item() == 0.0 and log_pred.grad is not None


def test_rejects_bad_lambda_and_shapes():
    with pytest.raises(ValueError, match='lambda_'):
        SILogLoss(lambda_=1.5)
    with pytest.raises(ValueError, match='shape'):
        SILogLoss()(torch.zeros(1, 4, 4), torch.ones(1, 4, 5))
