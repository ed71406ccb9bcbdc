"""The vision-tower interface shared by every backbone (``docs/internals.md`` §5)."""
import contextlib
from typing import ContextManager, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor


class VisionTower(BaseModule):
    """Base of the vision towers: the §5 attributes and the frozen-tower behaviour.

    ``forward(images [B, 3, S, S] normalised) -> (global_tokens [B, N, C_g], pyramid)``, where
    ``pyramid`` is a tuple of ``[B, C_i, S / s_i, S / s_i]`` maps with strides ``s_i`` ascending.
    Subclasses set ``global_channels``, ``global_grid`` (``N = h * w``, row-major),
    ``pyramid_channels`` and ``pyramid_strides`` in ``__init__`` and call :meth:`_freeze` at the
    end of it when ``frozen``.

    A frozen tower has no trainable parameter, stays in eval mode when its parent is put in train
    mode (so drop-path and norm statistics never change), and runs under ``torch.no_grad()``.

    Args:
        frozen: freeze every parameter of the tower.
    """

    global_channels: int
    global_grid: Tuple[int, int]
    pyramid_channels: Tuple[int, ...]
    pyramid_strides: Tuple[int, ...]

    def __init__(self, frozen: bool) -> None:
        super().__init__()
        self.frozen = frozen

    def _freeze(self) -> None:
        """Turn off gradients of every parameter and switch to eval mode."""
        for param in self.parameters():
            param.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> 'VisionTower':
        """Set train/eval mode; a frozen tower always stays in eval mode."""
        return super().train(mode and not self.frozen)

    def grad_context(self) -> ContextManager:
        """``torch.no_grad()`` for a frozen tower, a no-op context otherwise."""
        return torch.no_grad() if self.frozen else contextlib.nullcontext()

    @property
    def param_dtype(self) -> torch.dtype:
        """dtype of the tower's weights (inputs are cast to it, e.g. for a bf16 tower)."""
        return next(self.parameters()).dtype


def resize_square(images: Tensor, size: int) -> Tensor:
    """Bilinearly resize ``images [B, C, H, W]`` to ``[B, C, size, size]`` (identity if equal).

    Antialiased so that downscaling a large canvas matches an image-library resize.
    """
    if images.shape[-2:] == (size, size):
        return images
    return F.interpolate(
        images, size=(size, size), mode='bilinear', align_corners=False, antialias=True)
