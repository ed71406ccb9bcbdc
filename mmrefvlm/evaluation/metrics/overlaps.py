"""Intersections, unions and IoUs of boxes and masks (numpy, original image pixels).

Box IoU matrices come from MMDet's ``bbox_overlaps`` (continuous coordinates: a box
``[x1, y1, x2, y2]`` has area ``(x2 - x1) * (y2 - y1)``, no ``+1``).
"""
from typing import Tuple

import numpy as np
from mmdet.evaluation.functional import bbox_overlaps


def box_iou_matrix(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """IoU of every pair. ``boxes1 [N, 4]``, ``boxes2 [M, 4]`` xyxy → ``[N, M]``."""
    if len(boxes1) == 0 or len(boxes2) == 0:
        return np.zeros((len(boxes1), len(boxes2)))
    return bbox_overlaps(boxes1.astype(np.float64), boxes2.astype(np.float64), mode='iou')


def box_intersection_union(box1: np.ndarray, box2: np.ndarray) -> Tuple[float, float]:
    """Intersection and union areas of two xyxy boxes ``[4]`` (px²)."""
    iw = max(0.0, min(box1[2], box2[2]) - max(box1[0], box2[0]))
    ih = max(0.0, min(box1[3], box2[3]) - max(box1[1], box2[1]))
    inter = iw * ih
    area1 = max(0.0, box1[2] - box1[0]) * max(0.0, box1[3] - box1[1])
    area2 = max(0.0, box2[2] - box2[0]) * max(0.0, box2[3] - box2[1])
    return float(inter), float(area1 + area2 - inter)


def mask_intersection_union(mask1: np.ndarray, mask2: np.ndarray) -> Tuple[int, int]:
    """Intersection and union pixel counts of two bool masks ``[H, W]``."""
    if mask1.shape != mask2.shape:
        raise ValueError(f'mask shapes differ: {mask1.shape} vs {mask2.shape}')
    return int(np.logical_and(mask1, mask2).sum()), int(np.logical_or(mask1, mask2).sum())


def mask_iou_matrix(masks1: np.ndarray, masks2: np.ndarray) -> np.ndarray:
    """IoU of every pair. ``masks1 [N, H, W]``, ``masks2 [M, H, W]`` bool → ``[N, M]``.

    A pair whose union is empty has IoU 0.
    """
    if len(masks1) == 0 or len(masks2) == 0:
        return np.zeros((len(masks1), len(masks2)))
    if masks1.shape[1:] != masks2.shape[1:]:
        raise ValueError(f'mask shapes differ: {masks1.shape[1:]} vs {masks2.shape[1:]}')
    flat1 = masks1.reshape(len(masks1), -1).astype(np.float64)
    flat2 = masks2.reshape(len(masks2), -1).astype(np.float64)
    inter = flat1 @ flat2.T
    union = flat1.sum(1)[:, None] + flat2.sum(1)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def union_mask(masks: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    """Union ``[H, W]`` bool of ``masks [n, H, W]``; all False when ``n == 0``."""
    if len(masks) == 0:
        return np.zeros(shape, dtype=bool)
    return masks.astype(bool).any(axis=0)
