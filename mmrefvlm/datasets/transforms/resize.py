"""Resize keeping the aspect ratio and pad to the square canvas the vision towers read."""
import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.datasets.transforms import Pad, Resize

from mmrefvlm.registry import TRANSFORMS


@TRANSFORMS.register_module()
class ResizePadToCanvas(BaseTransform):
    """Scale the long side to ``size`` (aspect ratio kept) and pad bottom/right to ``size²``.

    The image, ``gt_bboxes`` and ``gt_masks`` go through MMDet's ``Resize`` and ``Pad``
    (bilinear image, nearest masks, boxes clipped to the resized image). This class adds what
    they do not cover: ``gt_keypoints`` (x, y scaled, visibility kept), ``prompt_masks``
    (nearest) and ``gt_depth_map`` (nearest, padding 0 = invalid).

    Afterwards every coordinate is in canvas pixels: ``canvas = original × scale_factor``.

    Added/updated keys: ``img`` ``[S, S, 3]``, ``img_shape`` (resized, before padding),
    ``pad_shape`` ``(S, S)``, ``scale_factor`` ``(sx, sy)``, and the fields above.

    Args:
        size: canvas side S in pixels.
        pad_val: value of padded image pixels.
    """

    def __init__(self, size: int, pad_val: int = 0) -> None:
        self.size = size
        self.pad_val = pad_val
        self.resize = Resize(scale=(size, size), keep_ratio=True, clip_object_border=True)
        self.pad = Pad(size=(size, size), pad_val=dict(img=pad_val, masks=0, seg=0))

    def transform(self, results: dict) -> dict:
        results = self.resize.transform(results)
        new_h, new_w = results['img_shape'][:2]
        sx, sy = results['scale_factor']
        if results.get('gt_keypoints') is not None:
            keypoints = results['gt_keypoints'].copy()
            keypoints[..., 0] *= sx
            keypoints[..., 1] *= sy
            results['gt_keypoints'] = keypoints
        if results.get('prompt_masks') is not None:
            results['prompt_masks'] = results['prompt_masks'].resize((new_h, new_w))
        if results.get('gt_depth_map') is not None:
            results['gt_depth_map'] = mmcv.imresize(
                results['gt_depth_map'], (new_w, new_h), interpolation='nearest')

        results = self.pad.transform(results)
        # MMDet's Pad overwrites img_shape with the padded shape; the contract keeps the
        # resized one (the valid region of the canvas).
        results['img_shape'] = (new_h, new_w)
        canvas = (self.size, self.size)
        if results.get('prompt_masks') is not None:
            results['prompt_masks'] = results['prompt_masks'].pad(canvas, pad_val=0)
        if results.get('gt_depth_map') is not None:
            results['gt_depth_map'] = mmcv.impad(
                results['gt_depth_map'], shape=canvas, pad_val=0).astype(np.float32)
        results['pad_shape'] = canvas
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(size={self.size}, pad_val={self.pad_val})'
