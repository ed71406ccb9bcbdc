"""Builders of data samples as the pipeline and the detector produce them (internals §3, §7):
ground truth on a canvas at ``SCALE`` × the original size, predictions in original pixels."""
from typing import Optional, Sequence

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData, PixelData

from mmrefvlm.datasets.renderers.prompts import encode_rle

SCALE = 2


def to_canvas(masks: np.ndarray, canvas: int) -> np.ndarray:
    """Upsample original-pixel masks ``[N, H, W]`` by ``SCALE`` and pad to ``canvas²``."""
    up = masks.repeat(SCALE, axis=1).repeat(SCALE, axis=2)
    out = np.zeros((len(masks), canvas, canvas), dtype=up.dtype)
    out[:, :up.shape[1], :up.shape[2]] = up
    return out


def build_sample(task: str,
                 ori_shape=(8, 10),
                 gt_boxes: Optional[Sequence] = None,
                 gt_masks: Optional[np.ndarray] = None,
                 gt_keypoints: Optional[np.ndarray] = None,
                 gt_labels: Optional[Sequence[int]] = None,
                 gt_depth: Optional[np.ndarray] = None,
                 pred_boxes: Optional[Sequence] = None,
                 pred_masks: Optional[np.ndarray] = None,
                 pred_keypoints: Optional[np.ndarray] = None,
                 pred_scores: Optional[Sequence[float]] = None,
                 pred_labels: Optional[Sequence[int]] = None,
                 pred_depth: Optional[np.ndarray] = None,
                 **metainfo) -> DetDataSample:
    """A test-mode data sample; every ``gt_*`` is given in ORIGINAL pixels and stored on the
    canvas like the pipeline does (masks also as original-size RLE in ``gt_mask_rles``), every
    ``pred_*`` is stored in original pixels."""
    h, w = ori_shape
    canvas = SCALE * max(h, w)
    sample = DetDataSample(metainfo=dict(
        task=task, img_id=metainfo.pop('img_id', 'img'), ori_shape=(h, w),
        img_shape=(SCALE * h, SCALE * w), pad_shape=(canvas, canvas),
        scale_factor=(float(SCALE), float(SCALE)), **metainfo))
    gt = InstanceData()
    num_gt = len(gt_boxes if gt_boxes is not None else gt_masks if gt_masks is not None
                 else gt_keypoints if gt_keypoints is not None else [])
    boxes = np.asarray(gt_boxes if gt_boxes is not None else np.zeros((num_gt, 4)),
                       dtype=np.float32).reshape(-1, 4)
    gt.bboxes = torch.from_numpy(boxes * SCALE)
    gt.labels = torch.as_tensor(gt_labels if gt_labels is not None else [0] * num_gt).long()
    gt.group_ids = torch.arange(num_gt)
    if gt_masks is not None:
        gt.masks = BitmapMasks(to_canvas(gt_masks.astype(np.uint8), canvas), canvas, canvas)
        sample.set_metainfo(dict(gt_mask_rles=[encode_rle(mask) for mask in gt_masks]))
    if gt_keypoints is not None:
        kpts = torch.as_tensor(gt_keypoints, dtype=torch.float32).clone()
        kpts[..., :2] *= SCALE
        gt.keypoints = kpts
    sample.gt_instances = gt
    if gt_depth is not None:
        sample.gt_depth_map = PixelData(
            data=torch.from_numpy(to_canvas(gt_depth[None].astype(np.float32), canvas)))
    pred = InstanceData()
    num_pred = len(pred_boxes if pred_boxes is not None else pred_masks
                   if pred_masks is not None else pred_keypoints
                   if pred_keypoints is not None else [])
    if pred_boxes is not None:
        pred.bboxes = torch.as_tensor(np.asarray(pred_boxes, dtype=np.float32).reshape(-1, 4))
    if pred_masks is not None:
        pred.masks = torch.as_tensor(pred_masks).bool()
    if pred_keypoints is not None:
        pred.keypoints = torch.as_tensor(pred_keypoints, dtype=torch.float32)
    pred.scores = torch.as_tensor(
        pred_scores if pred_scores is not None else [1.0] * num_pred, dtype=torch.float32)
    pred.labels = torch.as_tensor(
        pred_labels if pred_labels is not None else list(range(num_pred))).long()
    sample.pred_instances = pred
    if pred_depth is not None:
        sample.pred_depth_map = PixelData(data=torch.from_numpy(pred_depth[None]))
    return sample


def run_metrics(metrics, samples, dataset_meta=None) -> dict:
    """Evaluate ``samples`` the way the runner does (Evaluator: to_dict, process, evaluate)."""
    evaluator = Evaluator(metrics)
    if dataset_meta is not None:
        evaluator.dataset_meta = dataset_meta
    evaluator.process(data_samples=samples)
    return evaluator.evaluate(len(samples))


@pytest.fixture
def make_sample():
    return build_sample


@pytest.fixture
def evaluate():
    return run_metrics
