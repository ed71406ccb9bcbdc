"""Converters from public dataset formats to VT-Instruct records (``docs/converters.md``).

Each ``convert_*`` function reads one source format and yields records built by the task
renderers (:mod:`mmrefvlm.datasets.renderers`), counting what it leaves out in a
:class:`ConversionSummary`; :func:`write_jsonl` validates and writes them. The command-line
tools are ``tools/dataset_converters/*2vtinstruct.py``.
"""
from .coco_annotations import (ImageSizes, clip_box, coco_instance, compress_rle,
                               normalize_segmentation, segmentation_mask)
from .coco_detection import DETECTION_TASKS, coco_classes, convert_coco_detection
from .coco_interactive import (INTERACTIVE_TASKS, convert_coco_interactive, prompt_from_mask,
                               scribble_polyline)
from .coco_keypoints import (COCO_KEYPOINT_SIGMAS, KEYPOINT_TASKS, convert_coco_keypoints,
                             keypoint_meta)
from .flickr30k import convert_flickr30k, parse_annotation, parse_sentence
from .glamm_gcg import convert_glamm_gcg
from .llava import convert_llava, normalized_turns
from .output import ConversionSummary, record_rng, write_jsonl, write_meta
from .refcoco import REFERRING_TASKS, convert_refcoco, load_refs
from .vqa import convert_pope, convert_vqav2, pope_object

__all__ = [
    'ImageSizes', 'clip_box', 'coco_instance', 'compress_rle', 'normalize_segmentation',
    'segmentation_mask', 'DETECTION_TASKS', 'coco_classes', 'convert_coco_detection',
    'INTERACTIVE_TASKS', 'convert_coco_interactive', 'prompt_from_mask', 'scribble_polyline',
    'COCO_KEYPOINT_SIGMAS', 'KEYPOINT_TASKS', 'convert_coco_keypoints', 'keypoint_meta',
    'convert_flickr30k', 'parse_annotation', 'parse_sentence', 'convert_glamm_gcg',
    'convert_llava', 'normalized_turns', 'ConversionSummary', 'record_rng', 'write_jsonl',
    'write_meta', 'REFERRING_TASKS', 'convert_refcoco', 'load_refs', 'convert_pope',
    'convert_vqav2', 'pope_object'
]
