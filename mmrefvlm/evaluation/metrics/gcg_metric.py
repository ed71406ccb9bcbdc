"""Grounded conversation generation: AP50, mIoU, recall and caption scores (GLaMM protocol)."""
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pycocotools.mask as mask_utils

from mmrefvlm.datasets.tasks import get_task
from mmrefvlm.registry import METRICS
from mmrefvlm.trp import TRPParseError, parse_answer
from .caption_scorers import score_captions, shared_meteor
from .coco_eval import coco_evaluate, region_annotations
from .fovd_metric import IOU_TYPES
from .sample_views import (gt_instances_original, pred_instances, pred_phrase_per_instance,
                           sample_name, sample_prediction_text, sample_references)
from .task_metric import TaskMetric, TaskNames
from .text_encoders import build_text_encoder


def gt_phrase_per_ref(sample: Dict[str, Any], num_rows: int, metric: str) -> List[str]:
    """The phrase of each ground-truth row: row ``r`` is the ``r``-th ``<REF>`` of
    ``gt_answer`` and takes the phrase of the triplet holding that ``<REF>``."""
    name = sample_name(sample)
    try:
        triplets = parse_answer(sample.get('gt_answer') or '')
    except TRPParseError as error:
        raise ValueError(f'{metric}: {name} gt_answer: {error}') from None
    phrases: Dict[int, str] = {}
    for triplet in triplets:
        phrases.update(dict.fromkeys(triplet.ref_ordinals, triplet.phrase))
    if len(phrases) != num_rows:
        raise ValueError(f'{metric}: {name} gt_answer has {len(phrases)} <REF> tokens but '
                         f'gt_instances has {num_rows} rows')
    return [phrases[r] for r in range(num_rows)]


def region_iou_matrix(preds: List[dict], gts: List[dict], iou_type: str) -> np.ndarray:
    """IoU ``[len(preds), len(gts)]`` of COCO regions (RLE masks or xywh boxes)."""
    if not preds or not gts:
        return np.zeros((len(preds), len(gts)))
    key = 'segmentation' if iou_type == 'segm' else 'bbox'
    return np.asarray(mask_utils.iou([p[key] for p in preds], [g[key] for g in gts],
                                     [0] * len(gts))).reshape(len(preds), len(gts))


def greedy_matches(iou: np.ndarray, similarity: np.ndarray, iou_thr: float,
                   similarity_thr: float) -> int:
    """Number of one-to-one (pred, gt) pairs taken greedily by decreasing IoU among the pairs
    with ``iou >= iou_thr`` and ``similarity >= similarity_thr``."""
    candidates = np.argwhere((iou >= iou_thr) & (similarity >= similarity_thr))
    order = np.argsort(-iou[candidates[:, 0], candidates[:, 1]], kind='stable')
    used_pred, used_gt = set(), set()
    for p, g in candidates[order].tolist():
        if p not in used_pred and g not in used_gt:
            used_pred.add(p)
            used_gt.add(g)
    return len(used_gt)


@METRICS.register_module()
class GCGMetric(TaskMetric):
    """GCG scores (DESIGN §7, following GLaMM's evaluation), original image pixels.

    - ``AP50``: class-agnostic COCOeval AP at IoU 0.5 (``segm`` for gcg_mask, ``bbox`` for
      gcg_box) over **all** images of the split; prediction score = ``pred_instances.scores``.
    - ``mIoU``: every ground-truth region is matched to its best-overlapping prediction of the
      same image (IoU 0 when there is none); mean over all ground-truth regions of the split.
    - ``recall``: ground-truth regions matched one-to-one (greedily by decreasing IoU) to a
      prediction with ``IoU >= iou_thr`` (0.5) **and** phrase similarity ``>= similarity_thr``
      (0.5, by the text encoder) between the predicted and the ground-truth phrase, divided by
      the number of ground-truth regions.
    - ``CIDEr``, ``METEOR`` (and optionally ``BLEU-4``) of ``strip_tags(pred_text)`` against
      the references (metainfo ``references`` or ``strip_tags(gt_answer)``).

    Ground-truth phrases come from ``gt_answer``: row ``r`` of ``gt_instances`` belongs to the
    triplet holding the ``r``-th ``<REF>``.

    Args:
        text_encoder: phrase similarity for recall, see :mod:`.text_encoders`.
        iou_thr: IoU threshold of recall.
        similarity_thr: phrase similarity threshold of recall.
        caption_scores: which caption scores to report.
        tasks: task names, default ``('gcg_box', 'gcg_mask')``.
    """
    default_tasks = ('gcg_box', 'gcg_mask')

    def __init__(self,
                 text_encoder: Optional[dict] = None,
                 iou_thr: float = 0.5,
                 similarity_thr: float = 0.5,
                 caption_scores: Sequence[str] = ('CIDEr', 'METEOR'),
                 tasks: TaskNames = None,
                 **kwargs: Any) -> None:
        super().__init__(tasks=tasks, **kwargs)
        self.text_encoder_cfg = dict(text_encoder or dict(type='minilm'))
        self.iou_thr = iou_thr
        self.similarity_thr = similarity_thr
        self.caption_scores = tuple(caption_scores)
        if 'METEOR' in self.caption_scores:
            shared_meteor()  # start java now: its tables load while the model predicts

    def process_sample(self, sample: Dict[str, Any]) -> Dict[str, Any]:
        name = sample_name(sample)
        iou_type = IOU_TYPES[get_task(sample['task']).unit]
        gt = gt_instances_original(sample)
        pred = pred_instances(sample)
        ori_h, ori_w = (int(v) for v in sample['ori_shape'][:2])
        return dict(
            height=ori_h, width=ori_w,
            gt_phrases=gt_phrase_per_ref(sample, len(gt['bboxes']), 'GCGMetric'),
            gt_regions=region_annotations(gt, iou_type, 'GCGMetric', name),
            pred_phrases=pred_phrase_per_instance(sample, pred['labels']),
            pred_regions=region_annotations(pred, iou_type, 'GCGMetric', name,
                                            maskless_size=(ori_h, ori_w)),
            pred_scores=pred['scores'].tolist(),
            prediction=sample_prediction_text(sample),
            references=sample_references(sample, 'GCGMetric'))

    def compute_task(self, task: str, results: List[Dict[str, Any]]) -> Dict[str, float]:
        iou_type = IOU_TYPES[get_task(task).unit]
        metrics = dict(AP50=self._ap50(results, iou_type))
        best_ious, matched = [], 0
        encoder = build_text_encoder(self.text_encoder_cfg)
        for result in results:
            iou = region_iou_matrix(result['pred_regions'], result['gt_regions'], iou_type)
            best_ious.extend(iou.max(axis=0, initial=0.0).tolist())
            similarity = encoder.similarity(result['pred_phrases'], result['gt_phrases'])
            matched += greedy_matches(iou, similarity, self.iou_thr, self.similarity_thr)
        metrics['mIoU'] = float(np.mean(best_ious)) if best_ious else 0.0
        metrics['recall'] = matched / len(best_ious) if best_ious else 0.0
        if self.caption_scores:
            metrics.update(score_captions([r['prediction'] for r in results],
                                          [r['references'] for r in results],
                                          self.caption_scores))
        return metrics

    @staticmethod
    def _ap50(results: List[Dict[str, Any]], iou_type: str) -> float:
        images, gts, dts = [], [], []
        for image_id, result in enumerate(results, start=1):
            images.append(dict(id=image_id, height=result['height'], width=result['width']))
            gts.extend(dict(region, image_id=image_id, category_id=1, iscrowd=0)
                       for region in result['gt_regions'])
            dts.extend(dict(region, image_id=image_id, category_id=1, score=score)
                       for region, score in zip(result['pred_regions'], result['pred_scores']))
        stats = coco_evaluate(images, [dict(id=1, name='object')], gts, dts, iou_type)
        return stats['mAP_50']
