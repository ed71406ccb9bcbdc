"""Load the image and the annotations of a VT-Instruct record into MMDet's pipeline fields."""
from typing import Optional

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks
from mmengine import fileio

from mmrefvlm.registry import TRANSFORMS
from ..image_files import ImageFileError, check_image_bytes, size_problem
from ..renderers.prompts import encode_rle
from .rasterize import decode_segmentation, prompt_mask


def read_image(path: str, flag: str = 'color', backend: str = 'cv2',
               backend_args: Optional[dict] = None) -> np.ndarray:
    """Read and decode an image file, naming the file in every failure.

    Raises:
        ImageFileError: the file is missing, empty, truncated or not an image.
    """
    try:
        data = fileio.get(path, backend_args=backend_args)
    except FileNotFoundError:
        raise ImageFileError(path, 'does not exist') from None
    problem = check_image_bytes(data)
    if problem is not None:
        raise ImageFileError(path, problem)
    try:
        img = mmcv.imfrombytes(data, flag=flag, backend=backend)
    except Exception as error:  # cv2.error, PIL errors: the decoders' own types
        raise ImageFileError(path, f'cannot be decoded as an image ({error})') from None
    if img is None:
        raise ImageFileError(path, 'cannot be decoded as an image')
    return img


@TRANSFORMS.register_module()
class LoadVTInstructImage(BaseTransform):
    """MMCV's ``LoadImageFromFile`` for records: every image fault names the file.

    A missing, empty, truncated or undecodable file, or an image whose size differs from the
    record's ``width``/``height`` (its boxes would be in another frame), raises
    :class:`~mmrefvlm.datasets.image_files.ImageFileError` (a ``ValueError``): the dataset then
    skips the sample or stops, as its ``on_bad_record`` says, instead of a worker dying on
    ``cv2.error`` or ``AssertionError: failed to load image``.

    Required keys: ``img_path``; ``width`` and ``height`` when present are checked.

    Added keys: ``img`` (``[H, W, 3]`` uint8, or float32 with ``to_float32``), ``img_shape``,
    ``ori_shape``.

    Args:
        to_float32: return a float32 image.
        color_type: as in :func:`mmcv.imfrombytes`.
        imdecode_backend: as in :func:`mmcv.imfrombytes`.
        backend_args: as in :func:`mmengine.fileio.get`.
    """

    def __init__(self, to_float32: bool = False, color_type: str = 'color',
                 imdecode_backend: str = 'cv2', backend_args: Optional[dict] = None) -> None:
        self.to_float32 = to_float32
        self.color_type = color_type
        self.imdecode_backend = imdecode_backend
        self.backend_args = backend_args

    def transform(self, results: dict) -> dict:
        path = results['img_path']
        img = read_image(path, self.color_type, self.imdecode_backend, self.backend_args)
        if results.get('width') is not None and results.get('height') is not None:
            problem = size_problem((img.shape[1], img.shape[0]),
                                   (results['width'], results['height']))
            if problem is not None:
                raise ImageFileError(path, problem)
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(to_float32={self.to_float32}, '
                f"color_type='{self.color_type}', imdecode_backend='{self.imdecode_backend}')")


@TRANSFORMS.register_module()
class LoadVTInstructAnnotations(BaseTransform):
    """Record instances, visual prompts and depth map → tensors in the original image frame.

    Required keys: ``instances``, ``prompts``, ``depth_path`` (may be ``None``), ``img_shape``
    (after ``LoadImageFromFile``) or ``height``/``width``.

    Added keys (all in original absolute pixels):

    - ``gt_bboxes``: ``HorizontalBoxes [N, 4]`` xyxy float32.
    - ``gt_masks``: ``BitmapMasks [N, H, W]``, only when some instance has a segmentation
      (instances without one get an all-zero mask).
    - ``gt_mask_rles``: the same N masks as compressed COCO RLE (``{size: [H, W], counts:
      str}``), with ``gt_masks``. They ride along untouched by the canvas transforms, so the
      metrics score against the annotation at the original size (DESIGN §7).
    - ``gt_keypoints``: float32 ``[N, K, 3]`` (x, y, COCO visibility), only when some instance
      has keypoints or ``num_keypoints`` is given (instances without keypoints are all zero).
    - ``gt_categories``: ``list[str]`` of length N.
    - ``gt_depths``: float32 ``[N]`` instance mean depth in metres, 0 when unknown.
    - ``prompt_masks``: ``BitmapMasks [P, H, W]`` in record prompt order: a point is a disk of
      ``point_radius`` px, a box is filled, a scribble is its polyline ``scribble_width`` px
      wide, a mask is decoded.
    - ``gt_depth_map``: float32 ``[H, W]`` metres (0 = invalid), when ``depth_path`` is set;
      the PNG stores millimetres in 16 bits. A depth file that is missing, truncated or not an
      image raises :class:`~mmrefvlm.datasets.image_files.ImageFileError`.

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
            results['gt_mask_rles'] = [encode_rle(mask) for mask in masks]
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
        depth = read_image(path, flag='unchanged')
        if depth.ndim != 2 or depth.shape != (height, width):
            raise ValueError(f'depth map {path} has shape {depth.shape}, expected a single '
                             f'channel of {(height, width)}')
        return depth.astype(np.float32) / self.depth_scale

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(point_radius={self.point_radius}, '
                f'scribble_width={self.scribble_width}, num_keypoints={self.num_keypoints}, '
                f'depth_scale={self.depth_scale})')
