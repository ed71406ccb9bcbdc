"""Freeform / closed-vocabulary open-vocabulary detection and segmentation AP (paper App. E)."""
from typing import Any, Dict, List, Optional, Sequence

from mmrefvlm.datasets.tasks import get_task
from mmrefvlm.registry import METRICS
from .coco_eval import coco_evaluate, region_annotations
from .sample_views import (gt_instances_original, pred_instances, pred_phrase_per_instance,
                           sample_name)
from .task_metric import TaskMetric, TaskNames
from .text_encoders import build_text_encoder

IOU_TYPES = dict(box='bbox', mask='segm')


@METRICS.register_module()
class FOVDMetric(TaskMetric):
    """mAP-similarity of freeform open-vocabulary detection / segmentation (paper App. E).

    Protocol: each predicted phrase (``pred_phrases[label]`` of each predicted instance) is
    embedded with the text encoder and assigned to the dataset class of highest cosine
    similarity; that similarity is the prediction's score (the model has no class logits). A
    prediction whose best similarity is ``<= 0`` (with the ``exact`` encoder: a phrase that is
    no class name) cannot be attributed to a class and is dropped. COCOeval (``bbox`` for box
    tasks, ``segm`` for mask tasks) then runs over **all** images of the split, images without
    predictions included, in original image pixels.

    Class names: ``classes`` if given, else ``dataset_meta['classes']``, else the union of the
    samples' metainfo ``classes`` in order of appearance. Ground-truth ``labels`` index into
    the sample's metainfo ``classes`` when present, else into that vocabulary.

    Reports ``{task}/mAP``, ``mAP_50``, ``mAP_75``, ``mAP_s/m/l``, ``AR_1/10/100``, ``AR_s/m/l``
    (COCOeval's stats, [0, 1], -1 where undefined).

    Args:
        text_encoder: see :mod:`.text_encoders`; the paper uses
            ``dict(type='clip', path=..., model_name='ViT-L-14-336')``.
        classes: the dataset's class names.
        tasks: task names, default ``('fovd', 'fovs')``.
    """
    default_tasks = ('fovd', 'fovs')

    def __init__(self,
                 text_encoder: Optional[dict] = None,
                 classes: Optional[Sequence[str]] = None,
                 tasks: TaskNames = None,
                 **kwargs: Any) -> None:
        super().__init__(tasks=tasks, **kwargs)
        self.text_encoder_cfg = dict(text_encoder or dict(type='minilm'))
        self.classes = list(classes) if classes is not None else None
        for task in self.tasks:
            if get_task(task).unit not in IOU_TYPES:
                raise ValueError(f'{type(self).__name__}: task {task!r} decodes '
                                 f'{get_task(task).unit!r}, not a box or a mask')

    def _vocabulary(self, results: Optional[List[Dict[str, Any]]] = None) -> List[str]:
        if self.classes is not None:
            return self.classes
        if self.dataset_meta and self.dataset_meta.get('classes'):
            return list(self.dataset_meta['classes'])
        names: Dict[str, None] = {}
        for result in results or []:
            names.update(dict.fromkeys(result['sample_classes']))
        return list(names)

    def process_sample(self, sample: Dict[str, Any]) -> Dict[str, Any]:
        name = sample_name(sample)
        iou_type = IOU_TYPES[get_task(sample['task']).unit]
        gt = gt_instances_original(sample)
        sample_classes = list(sample.get('classes') or self._vocabulary())
        labels = gt['labels'].tolist()
        if any(not 0 <= label < len(sample_classes) for label in labels):
            raise ValueError(f'{type(self).__name__}: {name} has gt labels {labels} but '
                             f'{len(sample_classes)} class names')
        pred = pred_instances(sample)
        ori_h, ori_w = (int(v) for v in sample['ori_shape'][:2])
        return dict(
            height=ori_h, width=ori_w, sample_classes=sample_classes,
            gt_classes=[sample_classes[label] for label in labels],
            gt_regions=region_annotations(gt, iou_type, type(self).__name__, name),
            pred_phrases=pred_phrase_per_instance(sample, pred['labels']),
            pred_regions=region_annotations(pred, iou_type, type(self).__name__, name,
                                            maskless_size=(ori_h, ori_w)))

    def compute_task(self, task: str, results: List[Dict[str, Any]]) -> Dict[str, float]:
        vocabulary = self._vocabulary(results)
        missing = {c for r in results for c in r['gt_classes']} - set(vocabulary)
        if missing:
            raise ValueError(f'{type(self).__name__}: ground-truth classes {sorted(missing)} '
                             'are not in the class vocabulary')
        class_ids = {name: i + 1 for i, name in enumerate(vocabulary)}
        phrases = sorted({p for r in results for p in r['pred_phrases']})
        similarity = build_text_encoder(self.text_encoder_cfg).similarity(phrases, vocabulary)
        best = {p: (int(similarity[i].argmax()), float(similarity[i].max()))
                for i, p in enumerate(phrases)}
        images, gts, dts = [], [], []
        for image_id, result in enumerate(results, start=1):
            images.append(dict(id=image_id, height=result['height'], width=result['width']))
            for cls, region in zip(result['gt_classes'], result['gt_regions']):
                gts.append(dict(region, image_id=image_id, category_id=class_ids[cls],
                                iscrowd=0))
            for phrase, region in zip(result['pred_phrases'], result['pred_regions']):
                cls_index, score = best[phrase]
                if score > 0:
                    dts.append(dict(region, image_id=image_id, category_id=cls_index + 1,
                                    score=score))
        categories = [dict(id=i, name=name) for name, i in class_ids.items()]
        iou_type = IOU_TYPES[get_task(task).unit]
        return coco_evaluate(images, categories, gts, dts, iou_type)


@METRICS.register_module()
class OVDMetric(FOVDMetric):
    """Closed-vocabulary open-vocabulary detection / segmentation AP (ovd, ovs).

    The class list is given to the model; a predicted phrase counts for a class only when it
    equals the class name after normalisation (lower case, trimmed punctuation and whitespace),
    with score 1.0; any other phrase is dropped. Otherwise as :class:`FOVDMetric` (COCOeval
    over all images).

    Args:
        classes: the dataset's class names (else ``dataset_meta`` / samples' ``classes``).
        tasks: task names, default ``('ovd', 'ovs')``.
    """
    default_tasks = ('ovd', 'ovs')

    def __init__(self,
                 classes: Optional[Sequence[str]] = None,
                 tasks: TaskNames = None,
                 **kwargs: Any) -> None:
        super().__init__(text_encoder=dict(type='exact'), classes=classes, tasks=tasks,
                         **kwargs)
