"""Scaffolding shared by the unit-head tests: the two-sample query batch, the fixed-batch
training check and the every-parameter-has-a-gradient check."""
from typing import Dict, Sequence, Tuple

import torch
from torch import Tensor, nn

LLM_DIMS = 24
CANVAS = 64


def small_decoder(embed_dims: int = 32, num_layers: int = 2, num_heads: int = 4,
                  positions_in_values: bool = True) -> dict:
    """A ``RefQueryDecoder`` config at test size."""
    attention = dict(embed_dims=embed_dims, num_heads=num_heads, dropout=0.0, batch_first=True)
    return dict(num_layers=num_layers, positions_in_values=positions_in_values,
                layer_cfg=dict(self_attn_cfg=attention, cross_attn_cfg=attention,
                               ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=2 *
                                            embed_dims, num_fcs=2, ffn_drop=0.0,
                                            act_cfg=dict(type='ReLU', inplace=True))),
                return_intermediate=True)


# the tiny config's additions to the paper's decoding
LOCATED = dict(decoder=small_decoder(), locator=dict(type='ReferenceLocator'))


def batch_inputs(pyramid_channels: Sequence[int], strides: Sequence[int], seed: int = 0):
    """Sample 0: groups ``(0, 0, 1)`` + one padded slot on a 64×64 image; sample 1: group
    ``(0, 0)`` + two padded slots on a 48×56 image; both on a 64×64 canvas.

    Returns:
        tuple: ``queries [2, 4, LLM_DIMS]``, ``query_mask [2, 4]``, ``group_ids [2, 4]``, the
        pyramid (one ``[2, C, 64 / s, 64 / s]`` map per ``(C, s)``) and the image metas.
    """
    gen = torch.Generator().manual_seed(seed)
    queries = torch.randn(2, 4, LLM_DIMS, generator=gen)
    query_mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    group_ids = torch.tensor([[0, 0, 1, -1], [0, 0, -1, -1]])
    pyramid = [torch.randn(2, c, CANVAS // s, CANVAS // s, generator=gen)
               for c, s in zip(pyramid_channels, strides)]
    metas = [dict(img_shape=(64, 64), pad_shape=(CANVAS, CANVAS)),
             dict(img_shape=(48, 56), pad_shape=(CANVAS, CANVAS))]
    return queries, query_mask, group_ids, pyramid, metas


def losses_before_and_after_training(head: nn.Module, batch: tuple, steps: int = 30,
                                     lr: float = 2e-3,
                                     **loss_kwargs) -> Tuple[Dict[str, float], Dict[str, float]]:
    """Every loss of ``head.loss_by_feat(*batch, **loss_kwargs)`` before and after ``steps`` Adam
    steps on their sum."""
    optim = torch.optim.Adam(head.parameters(), lr=lr)
    first = {name: value.item()
             for name, value in head.loss_by_feat(*batch, **loss_kwargs).items()}
    for _ in range(steps):
        losses = head.loss_by_feat(*batch, **loss_kwargs)
        optim.zero_grad()
        sum(losses.values()).backward()
        optim.step()
    last = {name: value.item() for name, value in head.loss_by_feat(*batch, **loss_kwargs).items()}
    return first, last


def total(losses: Dict[str, float], names: Sequence[str]) -> float:
    """Sum of the ``names`` entries of ``losses``."""
    return sum(losses[name] for name in names)


def assert_every_parameter_has_a_gradient(head: nn.Module, losses: Dict[str, Tensor]) -> None:
    """Back-propagate the sum of ``losses``; every parameter of ``head`` must get a gradient."""
    sum(losses.values()).backward()
    missing = [name for name, p in head.named_parameters() if p.grad is None]
    assert missing == []
