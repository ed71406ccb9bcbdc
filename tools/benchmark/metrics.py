"""Benchmark: evaluation time per 1000 samples of each metric (process + compute, one thread).

Samples are built as the pipeline and the detector leave them for a COCO-sized image (480 × 640
original, 512-px canvas, two targets): ground truth on the canvas plus, for mask and keypoint
tasks, the annotation RLEs; predictions in original pixels, each a slightly shifted copy of its
ground truth. Each metric first evaluates a few samples untimed (imports, METEOR's java start-up).

    python tools/benchmark/metrics.py [--num 200]
"""
import argparse
import time
from typing import Dict, List

import mmcv
import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData, PixelData

from mmrefvlm.datasets.renderers.prompts import encode_rle
from mmrefvlm.registry import METRICS

HEIGHT, WIDTH, CANVAS = 480, 640, 512
SCALE = CANVAS / WIDTH
CLASSES = ['person', 'dog', 'car', 'cup', 'chair']
CAPTION = 'a dog sits next to a person on a chair'
KPT_SIGMAS = [0.026, 0.025, 0.025, 0.035, 0.035]
MASK_TASKS = ('res', 'ig_mask', 'gcg_mask', 'fovs', 'keypoint')  # keypoint: OKS scale = mask area


def _objects(rng: np.random.Generator, num: int):
    """``num`` random boxes (xyxy original px) and their filled masks."""
    boxes, masks = [], np.zeros((num, HEIGHT, WIDTH), dtype=bool)
    for i in range(num):
        x, y = rng.integers(0, WIDTH - 120), rng.integers(0, HEIGHT - 120)
        w, h = rng.integers(20, 120, 2)
        boxes.append([x, y, x + w, y + h])
        masks[i, y:y + h, x:x + w] = True
    return np.array(boxes, dtype=np.float32), masks


def make_sample(task: str, rng: np.random.Generator, num: int = 2) -> DetDataSample:
    """A test-mode sample of ``task`` with ``num`` targets and shifted predictions."""
    boxes, masks = _objects(rng, num)
    with_masks = task in MASK_TASKS
    sample = DetDataSample(metainfo=dict(
        task=task, img_id=f'{task}_{rng.integers(1 << 30)}', ori_shape=(HEIGHT, WIDTH),
        img_shape=(round(HEIGHT * SCALE), CANVAS), pad_shape=(CANVAS, CANVAS),
        scale_factor=(SCALE, SCALE), classes=CLASSES, prompt_types=['point'],
        gt_answer=' and '.join(f'<Phrase>{CLASSES[i]}</Phrase>(<Unit>mask</Unit>[0]<REF>)'
                               for i in range(num)),
        references=[CAPTION, 'a person and a dog']))
    if with_masks:
        sample.set_metainfo(dict(gt_mask_rles=[encode_rle(m) for m in masks]))
    keypoints = np.concatenate([rng.uniform(0, 100, (num, 5, 2)), np.full((num, 5, 1), 2.)], -1)
    sample.gt_instances = InstanceData(
        bboxes=torch.from_numpy(boxes * SCALE), labels=torch.arange(num) % len(CLASSES),
        group_ids=torch.arange(num), keypoints=torch.from_numpy(keypoints * [SCALE, SCALE, 1]))
    sample.pred_instances = InstanceData(
        bboxes=torch.from_numpy(boxes + 3), scores=torch.ones(num), labels=torch.arange(num),
        keypoints=torch.from_numpy(keypoints + [2, 2, 0]).float())
    if with_masks:
        sample.gt_instances.masks = BitmapMasks(
            np.zeros((num, CANVAS, CANVAS), np.uint8), CANVAS, CANVAS)
        sample.pred_instances.masks = torch.from_numpy(np.roll(masks, 3, axis=2))
    sample.pred_phrases = [CLASSES[i % len(CLASSES)] for i in range(num)]
    sample.pred_text = 'yes' if task == 'pope' else CAPTION
    if task == 'depth':
        depth = rng.uniform(1, 10, (HEIGHT, WIDTH)).astype(np.float32)
        canvas = np.zeros((1, CANVAS, CANVAS), np.float32)
        height = round(HEIGHT * SCALE)
        canvas[0, :height] = mmcv.imresize(depth, (CANVAS, height), interpolation='nearest')
        sample.gt_depth_map = PixelData(data=torch.from_numpy(canvas))
        sample.pred_depth_map = PixelData(data=torch.from_numpy(depth[None]))
    if task in ('vqa', 'pope'):
        sample.set_metainfo(dict(gt_answer='yes', references=['yes'] * 10))
    return sample


METRIC_CONFIGS: Dict[str, dict] = {
    'rec': dict(type='RECMetric'),
    'res': dict(type='RESMetric'),
    'ig_box': dict(type='InteractiveGroundingMetric', tasks=['ig_box']),
    'ig_mask': dict(type='InteractiveGroundingMetric', tasks=['ig_mask']),
    'gcg_mask': dict(type='GCGMetric', text_encoder=dict(type='exact')),
    'ovd': dict(type='OVDMetric', classes=CLASSES),
    'fovs': dict(type='FOVDMetric', text_encoder=dict(type='exact'), classes=CLASSES),
    'keypoint': dict(type='KeypointMetric', keypoint_sigmas=KPT_SIGMAS),
    'depth': dict(type='DepthMetric'),
    'caption': dict(type='CaptionMetric'),
    'vqa': dict(type='VQAMetric'),
    'pope': dict(type='POPEMetric'),
}


def time_metric(task: str, num: int) -> float:
    """Seconds to process and compute ``num`` samples of ``task`` (after a 4-sample warm-up)."""
    rng = np.random.default_rng(0)
    samples: List[DetDataSample] = [make_sample(task, rng) for _ in range(num)]
    evaluator = Evaluator([METRICS.build(METRIC_CONFIGS[task])])
    evaluator.process(data_samples=samples[:4])
    evaluator.evaluate(4)
    start = time.perf_counter()
    evaluator.process(data_samples=samples)
    evaluator.evaluate(num)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--num', type=int, default=200, help='samples timed per metric')
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f'| task | metric | s per 1000 samples (measured on {args.num}) |')
    print('|---|---|---|')
    for task, cfg in METRIC_CONFIGS.items():
        seconds = time_metric(task, args.num)
        print(f'| {task} | {cfg["type"]} | {seconds * 1000 / args.num:.2f} |')


if __name__ == '__main__':
    main()
