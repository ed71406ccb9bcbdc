"""Load the annotations of a VT-Instruct record into MMDet's pipeline fields."""
from typing import Optional

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks

from mmrefvlm.registry import TRANSFORMS
from .rasterize import decode_segmentation, prompt_mask


@TRANSFORMS.register_module()
class LoadVTInstructAnnotations(BaseTransform):
    """Record instances, visual prompts and depth map → tensors in the original image frame.

    Required keys: ``instances``, ``prompts``, ``depth_path`` (may be ``None``), ``img_shape``
    (after ``LoadImageFromFile``) or ``height``/``width``.

    Added keys (all in original absolute pixels):

    - ``gt_bboxes``: ``HorizontalBoxes [N, 4]`` xyxy float32.
    - ``gt_masks``: ``BitmapMasks [N, H, W]``, only when some instance has a segmentation
      (instances without one get an all-zero mask).
    - ``gt_keypoints``: float32 ``[N, K, 3]`` (x, y, COCO visibility), only when some instance
      has keypoints or ``num_keypoints`` is given (instances without keypoints are all zero).
    - ``gt_categories``: ``list[str]`` of length N.
    - ``gt_depths``: float32 ``[N]`` instance mean depth in metres, 0 when unknown.
    - ``prompt_masks``: ``BitmapMasks [P, H, W]`` in record prompt order: a point is a disk of
      ``point_radius`` px, a box is filled, a scribble is its polyline ``scribble_width`` px
      wide, a mask is decoded.
    - ``gt_depth_map``: float32 ``[H, W]`` metres (0 = invalid), when ``depth_path`` is set;
      the PNG stores millimetres in 16 bits.

    Args:
        point_radius: disk radius of a point prompt, in original pixels.
        scribble_width: line width of a scribble prompt, in original pixels.
        num_keypoints: K of the data set; ``None`` infers it from the record.
        depth_scale: PNG value per metre.
    """

    def __init__(self, point_radius: int = 10, scribble_width: int = 5,
                 num_keypoints: Optional[int] = None, depth_scale: float = 1000.0) -> None:
        self.point_radius = point_radius
        self.scribble_width = scribble_width
        self.num_keypoints = num_keypoints
        self.depth_scale = depth_scale

    def transform(self, results: dict) -> dict:
        shape = results['img_shape'] if 'img_shape' in results else \
            (results['height'], results['width'])
        height, width = shape[:2]
        instances = results.get('instances') or []
        self._load_instances(results, instances, height, width)
        prompts = results.get('prompts') or []
        masks = [
            prompt_mask(p, height, width, self.point_radius, self.scribble_width)
            for p in prompts
        ]
        results['prompt_masks'] = BitmapMasks(
            np.stack(masks) if masks else np.zeros((0, height, width), np.uint8), height, width)
        if results.get('depth_path'):
            results['gt_depth_map'] = self._load_depth(results['depth_path'], height, width)
        return results

    def _load_instances(self, results: dict, instances: list, height: int, width: int) -> None:
        boxes = np.zeros((len(instances), 4), dtype=np.float32)
        for i, inst in enumerate(instances):
            x, y, w, h = inst['bbox']
            boxes[i] = (x, y, x + w, y + h)
        results['gt_bboxes'] = HorizontalBoxes(boxes)
        results['gt_categories'] = [str(inst.get('category', '')) for inst in instances]
        results['gt_depths'] = np.array([float(inst.get('depth') or 0.0) for inst in instances],
                                        dtype=np.float32)
        if any(inst.get('segmentation') for inst in instances):
            masks = np.zeros((len(instances), height, width), dtype=np.uint8)
            for i, inst in enumerate(instances):
                if inst.get('segmentation'):
                    masks[i] = decode_segmentation(inst['segmentation'], height, width)
            results['gt_masks'] = BitmapMasks(masks, height, width)
        num_keypoints = self.num_keypoints
        if num_keypoints is None:
            lengths = [len(inst['keypoints']) for inst in instances if inst.get('keypoints')]
            num_keypoints = max(lengths) // 3 if lengths else None
        if num_keypoints is not None:
            keypoints = np.zeros((len(instances), num_keypoints, 3), dtype=np.float32)
            for i, inst in enumerate(instances):
                if inst.get('keypoints'):
                    values = np.asarray(inst['keypoints'], dtype=np.float32).reshape(-1, 3)
                    if len(values) != num_keypoints:
                        raise ValueError(f'instance {i} has {len(values)} keypoints, the set '
                                         f'has {num_keypoints}')
                    keypoints[i] = values
            results['gt_keypoints'] = keypoints

    def _load_depth(self, path: str, height: int, width: int) -> np.ndarray:
        depth = mmcv.imread(path, flag='unchanged', backend='cv2')
        if depth is None:
            raise FileNotFoundError(f'cannot read depth map {path}')
        if depth.ndim != 2 or depth.shape != (height, width):
            raise ValueError(f'depth map {path} has shape {depth.shape}, expected a single '
                             f'channel of {(height, width)}')
        return depth.astype(np.float32) / self.depth_scale

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(point_radius={self.point_radius}, '
                f'scribble_width={self.scribble_width}, num_keypoints={self.num_keypoints}, '
                f'depth_scale={self.depth_scale})')
