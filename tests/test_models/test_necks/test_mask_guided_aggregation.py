import math

import pytest
import torch

from mmrefvlm.models.necks.mask_guided_aggregation import (MaskGuidedAggregation,
                                                           cosine_position_encoding)


def test_tokens_are_patchwise_mask_weighted_means():
    torch.manual_seed(0)
    features = torch.randn(8, 4, 4)  # C=8 on a 4x4 feature grid
    mask = torch.zeros(1, 16, 16)  # canvas 16x16 -> each feature cell is 4x4 canvas px
    mask[0, :8, :4] = 1  # covers feature cells (0,0) and (1,0): top-left patch only
    mga = MaskGuidedAggregation(grid=(2, 2), pe_weight=0.0)
    tokens = mga(features, mask)
    assert tokens.shape == (1, 4, 8)
    expected_top_left = features[:, :2, 0].mean(-1)
    torch.testing.assert_close(tokens[0, 0], expected_top_left)
    # patches the prompt does not touch carry no feature
    assert torch.all(tokens[0, 1:] == 0)


def test_partition_is_spatial_grid_not_raster_band():
    features = torch.arange(16.).reshape(1, 4, 4)
    mask = torch.ones(1, 4, 4)
    tokens = MaskGuidedAggregation(grid=(2, 2), pe_weight=0.0)(features, mask)[0, :, 0]
    # row-major patches of a 2x2 grid over a 4x4 map: means of each 2x2 block
    assert tokens.tolist() == [2.5, 4.5, 10.5, 12.5]


def test_soft_mask_weights_and_uneven_grid():
    torch.manual_seed(1)
    features = torch.randn(3, 5, 5)
    mask = torch.rand(2, 5, 5)
    tokens = MaskGuidedAggregation(grid=(2, 2), pe_weight=0.0)(features, mask)
    # adaptive partition of 5 cells into 2 bins: [0, 3) and [2, 5)
    rows, cols = slice(0, 3), slice(2, 5)
    weight = mask[1, rows, cols]
    expected = (features[:, rows, cols] * weight).sum((1, 2)) / weight.sum()
    torch.testing.assert_close(tokens[1, 1], expected)


def test_positional_encoding_added_with_lambda_one():
    features = torch.zeros(6, 4, 4)
    tokens = MaskGuidedAggregation(grid=(2, 2), temperature=100.0)(features, torch.ones(1, 8, 8))
    encoding = cosine_position_encoding(4, 6, 100.0)
    torch.testing.assert_close(tokens[0], encoding)
    n, i, channels = 3, 1, 6
    assert encoding[n, 2 * i].item() == pytest.approx(math.sin(n / 100.0**(2 * i / channels)))
    assert encoding[n, 2 * i + 1].item() == pytest.approx(
        math.cos(n / 100.0**(2 * i / channels)))


def test_no_parameters_and_empty_prompts():
    mga = MaskGuidedAggregation(grid=(3, 3))
    assert list(mga.parameters()) == []
    assert mga(torch.randn(4, 6, 6), torch.zeros(0, 12, 12)).shape == (0, 9, 4)


def test_gradient_flows_to_features():
    features = torch.randn(4, 4, 4, requires_grad=True)
    MaskGuidedAggregation()(features, torch.ones(1, 4, 4)).sum().backward()
    assert features.grad is not None and features.grad.abs().sum() > 0
