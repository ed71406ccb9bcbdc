"""Geometry of the square canvas the pipeline pads every image onto (``pad_shape (S, S)``,
image in the top-left ``img_shape``): padding masks, the box normalisation factors, and the way
back to original pixels (``canvas = original × scale_factor``)."""
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def canvas_padding_masks(batch_img_metas: Sequence[dict], sizes: Sequence[Tuple[int, int]],
                         device: torch.device) -> List[Tensor]:
    """Which feature cells lie in the canvas padding (outside ``img_shape``), per level.

    A cell of a ``[h, w]`` map over the ``pad_shape`` canvas is padding when no canvas pixel
    it covers is inside the image, i.e. the image occupies ``ceil(img_h * h / pad_h)`` rows.

    Args:
        batch_img_metas: per sample, with ``img_shape (h, w)`` and ``pad_shape (S, S)``.
        sizes: ``(h, w)`` of each feature level.
        device: device of the masks.

    Returns:
        list: per level ``[B, h, w]`` bool, True on padding.
    """
    masks = []
    for h, w in sizes:
        mask = torch.ones(len(batch_img_metas), h, w, dtype=torch.bool, device=device)
        for b, meta in enumerate(batch_img_metas):
            img_h, img_w = (int(v) for v in meta['img_shape'][:2])
            pad_h, pad_w = (int(v) for v in meta['pad_shape'][:2])
            mask[b, :-(-img_h * h // pad_h), :-(-img_w * w // pad_w)] = False
        masks.append(mask)
    return masks


def valid_pixel_mask(batch_img_metas: Sequence[dict], size: Tuple[int, int],
                     device: torch.device) -> Tensor:
    """Float 0/1 map of the image area (inside ``img_shape``) on a ``size`` grid over the canvas.

    Returns:
        Tensor: ``[B, h, w]`` float, 1 inside the image.
    """
    return (~canvas_padding_masks(batch_img_metas, [size], device)[0]).float()


def canvas_box_factors(batch_img_metas: Sequence[dict], device: torch.device) -> Tensor:
    """``(W, H, W, H)`` of each sample's canvas (``pad_shape``), to turn boxes normalised by the
    canvas into canvas pixels.

    Returns:
        Tensor: ``[B, 4]`` float.
    """
    return torch.tensor([[meta['pad_shape'][1], meta['pad_shape'][0]] * 2
                         for meta in batch_img_metas], dtype=torch.float32, device=device)


def boxes_to_original(bboxes: Tensor, img_meta: dict) -> Tensor:
    """``[n, 4]`` xyxy canvas px → original image px, clipped to the image."""
    scale_x, scale_y = img_meta['scale_factor'][:2]
    ori_h, ori_w = img_meta['ori_shape'][:2]
    bboxes = bboxes / bboxes.new_tensor([scale_x, scale_y, scale_x, scale_y])
    bboxes[:, 0::2] = bboxes[:, 0::2].clamp(0, ori_w)
    bboxes[:, 1::2] = bboxes[:, 1::2].clamp(0, ori_h)
    return bboxes


def points_to_original(points: Tensor, img_meta: dict) -> Tensor:
    """``[..., >=2]`` points whose first two channels are ``x, y`` canvas px → original px
    (the other channels, e.g. visibility, unchanged)."""
    scale_x, scale_y = img_meta['scale_factor'][:2]
    points = points.clone()
    points[..., 0] /= scale_x
    points[..., 1] /= scale_y
    return points


def maps_to_original(maps: Tensor, img_meta: dict) -> Tensor:
    """``[n, S, S]`` canvas maps → ``[n, H, W]`` fp32 original pixels: crop the padding, resize
    bilinearly."""
    img_h, img_w = img_meta['img_shape'][:2]
    ori_h, ori_w = img_meta['ori_shape'][:2]
    cropped = maps[:, :img_h, :img_w].float()
    if cropped.shape[0] == 0:
        return cropped.new_zeros(0, ori_h, ori_w)
    return F.interpolate(cropped[:, None], size=(ori_h, ori_w), mode='bilinear',
                         align_corners=False)[:, 0]
