"""The offline synthetic shape-scene generator (exact boxes, masks, keypoints and depth).

``generate(out_dir, num_train, num_val, seed, image_size, tasks, task_weights)`` writes a
VT-Instruct set that every task of ``TASKS`` can train and evaluate on without any download.
"""
from .generator import DEFAULT_TASK_WEIGHTS, generate, task_schedule
from .records import build_scene_record, scene_fits, scene_instances
from .scene import Scene, Shape, sample_scene
from .shapes import COLOURS, KEYPOINT_NAMES, KEYPOINT_SIGMAS, KINDS, SKELETON, all_categories

__all__ = [
    'generate', 'task_schedule', 'DEFAULT_TASK_WEIGHTS', 'build_scene_record', 'scene_fits',
    'scene_instances', 'Scene', 'Shape', 'sample_scene', 'COLOURS', 'KINDS', 'KEYPOINT_NAMES',
    'KEYPOINT_SIGMAS', 'SKELETON', 'all_categories'
]
