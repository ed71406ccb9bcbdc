"""Write pictures of test predictions with the runner's :class:`REFVLMVisualizer`.

MMDet's ``DetVisualizationHook`` labels instances by class index and names files by step;
REF-VLM's labels are generated phrases and its answers are text, and a user looking at
``--show-dir`` wants the first few samples of each task named after their image.
"""
import os
import os.path as osp
from typing import Optional, Sequence

import mmcv
from mmengine.hooks import Hook

from mmrefvlm.registry import HOOKS
from mmrefvlm.visualization import REFVLMVisualizer


@HOOKS.register_module()
class REFVLMVisualizationHook(Hook):
    """Save the first ``max_samples`` test predictions as PNGs under ``out_dir``.

    Args:
        out_dir: directory for the pictures (created).
        max_samples: how many samples to draw (on rank 0).
        show_task: print the VD-CoT ``<Task>`` block under each picture.
    """
    priority = 'NORMAL'

    def __init__(self, out_dir: str, max_samples: int = 8, show_task: bool = False) -> None:
        self.out_dir = out_dir
        self.max_samples = max_samples
        self.show_task = show_task
        self._written = 0

    def after_test_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None,
                        outputs: Optional[Sequence] = None) -> None:
        if runner.rank != 0 or self._written >= self.max_samples:
            return
        visualizer = runner.visualizer
        if not isinstance(visualizer, REFVLMVisualizer):
            raise TypeError(f'REFVLMVisualizationHook draws with REFVLMVisualizer, but the '
                            f"config's visualizer is {type(visualizer).__name__}; set "
                            "visualizer = dict(type='REFVLMVisualizer')")
        os.makedirs(self.out_dir, exist_ok=True)
        for sample in outputs or []:
            if self._written >= self.max_samples:
                break
            image = mmcv.imread(sample.img_path, channel_order='rgb')
            name = f'{self._written:03d}_{sample.metainfo.get("task", "")}_' \
                   f'{osp.splitext(osp.basename(sample.img_path))[0]}'
            visualizer.add_datasample(name, image, sample, show_task=self.show_task,
                                      out_file=osp.join(self.out_dir, f'{name}.png'))
            self._written += 1
