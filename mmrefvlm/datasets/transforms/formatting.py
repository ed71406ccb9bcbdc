"""Pack a pipeline result into the ``DetDataSample`` the model reads (docs/internals.md §3)."""
from typing import Optional, Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import BaseBoxes
from mmengine.structures import InstanceData, PixelData

from mmrefvlm.registry import TRANSFORMS

META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor',
             'task', 'sample_idx', 'gt_answer', 'classes', 'references', 'prompt_types')


def category_labels(categories: Sequence[str], classes: Optional[Sequence[str]]) -> np.ndarray:
    """Index of each category in ``classes``; 0 when absent or when there are no classes."""
    lookup = {name: i for i, name in enumerate(classes or ())}
    return np.array([lookup.get(name, 0) for name in categories], dtype=np.int64)


@TRANSFORMS.register_module()
class PackREFVLMInputs(BaseTransform):
    """``dict(inputs=img, data_samples=DetDataSample)`` with targets in ``<REF>`` order.

    - ``inputs``: uint8 ``[3, S, S]`` (channel order as loaded, BGR for ``LoadImageFromFile``).
    - ``data_samples.gt_instances``: one row per target ``<REF>`` (``target_indices``):
      ``bboxes [N, 4]`` xyxy canvas px, ``masks`` ``BitmapMasks [N, S, S]`` (when loaded),
      ``keypoints [N, K, 3]`` (when loaded), ``labels [N]`` (index into ``classes``, else 0),
      ``group_ids [N]``, ``depths [N]`` metres.
    - ``gt_depth_map``: ``PixelData(data=[1, S, S])`` metres, when loaded.
    - ``prompt_masks``: float ``[P, S, S]`` 0/1 in ``<region>`` order.
    - ``input_ids`` long ``[L]``; ``labels`` long ``[L]`` (training only).
    - ``gt_scene_instances`` (with ``scene_boxes``): ``bboxes [M, 4]`` float xyxy canvas px
      of every annotated instance of the image, targets or not, which a head's
      ``ReferenceLocator`` reads to train its dense box reading on every object in view.
    - metainfo: :data:`META_KEYS` present in the results, and ``gt_mask_rles`` (when masks are
      loaded): the compressed COCO RLE of each target's mask at the original image size, in
      ``<REF>`` order, which the metrics score against (never the canvas copy).

    Args:
        scene_boxes: pack ``gt_scene_instances`` (our addition for the locator; off in the
            paper).
    """

    def __init__(self, scene_boxes: bool = False) -> None:
        self.scene_boxes = scene_boxes

    def transform(self, results: dict) -> dict:
        img = results['img']
        if img.ndim == 2:
            img = img[..., None]
        inputs = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).to(torch.uint8)

        boxes = self._boxes(results)
        sample = DetDataSample()
        sample.gt_instances = self._targets(results, boxes)
        if results.get('gt_depth_map') is not None:
            sample.gt_depth_map = PixelData(
                data=torch.from_numpy(results['gt_depth_map'][None].astype(np.float32)))
        sample.prompt_masks = self._prompt_masks(results, img.shape[:2])
        sample.input_ids = torch.as_tensor(results['input_ids'], dtype=torch.long)
        if results.get('labels') is not None:
            sample.labels = torch.as_tensor(results['labels'], dtype=torch.long)
        sample.set_metainfo({key: results[key] for key in META_KEYS if key in results})
        if results.get('gt_mask_rles') is not None:
            sample.set_metainfo(dict(gt_mask_rles=[
                results['gt_mask_rles'][i] for i in results.get('target_indices', [])]))
        if self.scene_boxes:
            sample.gt_scene_instances = InstanceData(bboxes=boxes)
        return dict(inputs=inputs, data_samples=sample)

    @staticmethod
    def _targets(results: dict, boxes: torch.Tensor) -> InstanceData:
        """The target rows (``target_indices``) of every instance field; ``boxes`` are
        :meth:`_boxes`."""
        index = np.asarray(results.get('target_indices', []), dtype=np.int64)
        targets = InstanceData()
        targets.bboxes = boxes[torch.from_numpy(index)].reshape(-1, 4)
        if results.get('gt_masks') is not None:
            targets.masks = results['gt_masks'][index]
        if results.get('gt_keypoints') is not None:
            targets.keypoints = torch.from_numpy(results['gt_keypoints'][index].astype(np.float32))
        labels = category_labels(results.get('gt_categories', []), results.get('classes'))
        targets.labels = torch.from_numpy(labels[index])
        targets.group_ids = torch.as_tensor(
            results.get('target_group_ids', []), dtype=torch.long).reshape(-1)
        targets.depths = torch.from_numpy(results['gt_depths'][index].astype(np.float32))
        return targets

    @staticmethod
    def _boxes(results: dict) -> torch.Tensor:
        """``[N, 4]`` float xyxy canvas px of every loaded instance."""
        boxes = results['gt_bboxes']
        boxes = boxes.tensor if isinstance(boxes, BaseBoxes) else torch.as_tensor(boxes)
        return boxes.float().reshape(-1, 4)

    @staticmethod
    def _prompt_masks(results: dict, canvas: tuple) -> torch.Tensor:
        masks = results.get('prompt_masks')
        if masks is None or len(masks) == 0:
            return torch.zeros((0, *canvas), dtype=torch.float32)
        return torch.from_numpy(masks.to_ndarray().astype(np.float32))
