"""Keypoint detection: COCO OKS AP."""
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from mmrefvlm.registry import METRICS
from .coco_eval import coco_evaluate, xyxy_to_xywh
from .sample_views import gt_instances_original, pred_instances, sample_name
from .task_metric import TaskMetric, TaskNames


@METRICS.register_module()
class KeypointMetric(TaskMetric):
    """OKS AP via pycocotools ``COCOeval(iouType='keypoints')`` (DESIGN §7).

    Protocol: one category; every image of the split is evaluated (images without predictions
    included), in original image pixels. A prediction is the ``[K, 3]`` keypoints of a
    predicted instance with score ``pred_instances.scores`` (COCOeval ignores the predicted
    visibility). Ground-truth ``area`` (the OKS scale) is the instance's mask area when the
    sample has masks, else its box area (larger than COCO's segment area, so OKS is somewhat
    more lenient without masks); instances with no labelled keypoint (all ``v == 0``) are
    ignored, as in COCO.

    Sigmas: ``keypoint_sigmas`` if given, else ``dataset_meta['keypoint_sigmas']``, used as
    COCOeval uses them (COCO's nose: 0.026).

    Reports ``{task}/AP``, ``AP_50``, ``AP_75``, ``AP_m``, ``AP_l``, ``AR``, ``AR_50``,
    ``AR_75``, ``AR_m``, ``AR_l`` ([0, 1], -1 where undefined).

    Args:
        keypoint_sigmas: per-keypoint OKS sigmas ``[K]``.
        tasks: task names, default ``('keypoint',)``.
    """
    default_tasks = ('keypoint', )

    def __init__(self,
                 keypoint_sigmas: Optional[Sequence[float]] = None,
                 tasks: TaskNames = None,
                 **kwargs: Any) -> None:
        super().__init__(tasks=tasks, **kwargs)
        self.keypoint_sigmas = list(keypoint_sigmas) if keypoint_sigmas is not None else None

    def _sigmas(self) -> np.ndarray:
        sigmas = self.keypoint_sigmas
        if sigmas is None and self.dataset_meta:
            sigmas = self.dataset_meta.get('keypoint_sigmas')
        if sigmas is None:
            raise ValueError('KeypointMetric: no keypoint_sigmas given and none in '
                             'dataset_meta')
        return np.asarray(sigmas, dtype=np.float64)

    def process_sample(self, sample: Dict[str, Any]) -> Dict[str, Any]:
        name = sample_name(sample)
        gt = gt_instances_original(sample)
        if 'keypoints' not in gt:
            raise ValueError(f'KeypointMetric: {name} has no ground-truth keypoints')
        if 'masks' in gt:
            areas = gt['masks'].reshape(len(gt['masks']), -1).sum(1).astype(float)
        else:
            boxes = gt['bboxes']
            areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        gt_anns = [dict(keypoints=kpts.reshape(-1).tolist(), bbox=xyxy_to_xywh(box),
                        area=float(area), num_keypoints=int((kpts[:, 2] > 0).sum()))
                   for kpts, box, area in zip(gt['keypoints'], gt['bboxes'], areas)]
        pred = pred_instances(sample)
        pred_keypoints = pred.get('keypoints', np.zeros((0, gt['keypoints'].shape[1], 3)))
        dt_anns = [dict(keypoints=kpts.reshape(-1).tolist(), score=float(score))
                   for kpts, score in zip(pred_keypoints, pred['scores'])]
        return dict(gt=gt_anns, dt=dt_anns, num_keypoints=int(gt['keypoints'].shape[1]))

    def compute_task(self, task: str, results: List[Dict[str, Any]]) -> Dict[str, float]:
        sigmas = self._sigmas()
        images, gts, dts = [], [], []
        for image_id, result in enumerate(results, start=1):
            if result['num_keypoints'] != len(sigmas):
                raise ValueError(f'KeypointMetric: samples have {result["num_keypoints"]} '
                                 f'keypoints but {len(sigmas)} sigmas are given')
            images.append(dict(id=image_id))
            gts.extend(dict(ann, image_id=image_id, category_id=1, iscrowd=0)
                       for ann in result['gt'])
            dts.extend(dict(ann, image_id=image_id, category_id=1) for ann in result['dt'])
        categories = [dict(id=1, name='instance')]
        return coco_evaluate(images, categories, gts, dts, 'keypoints', kpt_oks_sigmas=sigmas)
