"""Write pictures of test predictions: boxes, masks and keypoints on the image, labelled with
their phrases, and the generated answer printed under it.

MMDet's ``DetVisualizationHook`` labels instances by class index; REF-VLM's labels are generated
phrases and its answers are text, hence this hook.
"""
import os
import os.path as osp
import textwrap
from typing import Optional, Sequence

import numpy as np
from mmengine.hooks import Hook
from PIL import Image, ImageDraw

from mmrefvlm.registry import HOOKS

_PALETTE = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
            (70, 240, 240), (240, 50, 230), (210, 245, 60)]


def draw_prediction(image: Image.Image, sample, line_width: int = 2) -> Image.Image:
    """Draw one ``DetDataSample``'s ``pred_instances`` (original pixels) and ``pred_text``."""
    canvas = image.convert('RGB')
    pred = sample.pred_instances
    phrases = list(getattr(sample, 'pred_phrases', []))
    if 'masks' in pred and len(pred):
        overlay = np.asarray(canvas).astype(np.float32)
        for k, mask in enumerate(pred.masks.cpu().numpy().astype(bool)):
            colour = np.array(_PALETTE[int(pred.group_ids[k]) % len(_PALETTE)], np.float32)
            overlay[mask] = 0.5 * overlay[mask] + 0.5 * colour
        canvas = Image.fromarray(overlay.astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for k in range(len(pred)):
        group = int(pred.group_ids[k])
        colour = _PALETTE[group % len(_PALETTE)]
        x0, y0, x1, y1 = pred.bboxes[k].tolist()
        draw.rectangle([x0, y0, x1, y1], outline=colour, width=line_width)
        if group < len(phrases):
            draw.text((x0 + 2, y0 + 1), phrases[group], fill=colour)
        if 'keypoints' in pred:
            for x, y, v in pred.keypoints[k].tolist():
                if v > 0.5:
                    draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
    text = textwrap.fill(getattr(sample, 'pred_text', ''), width=max(20, canvas.width // 7))
    lines = text.count('\n') + 1
    framed = Image.new('RGB', (canvas.width, canvas.height + 12 * lines + 6), 'white')
    framed.paste(canvas, (0, 0))
    ImageDraw.Draw(framed).multiline_text((3, canvas.height + 3), text, fill='black', spacing=2)
    return framed


@HOOKS.register_module()
class REFVLMVisualizationHook(Hook):
    """Save the first ``max_samples`` test predictions as PNGs under ``out_dir``.

    Args:
        out_dir: directory for the pictures (created).
        max_samples: how many samples to draw (on rank 0).
    """
    priority = 'NORMAL'

    def __init__(self, out_dir: str, max_samples: int = 8) -> None:
        self.out_dir = out_dir
        self.max_samples = max_samples
        self._written = 0

    def after_test_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None,
                        outputs: Optional[Sequence] = None) -> None:
        if runner.rank != 0 or self._written >= self.max_samples:
            return
        os.makedirs(self.out_dir, exist_ok=True)
        for sample in outputs or []:
            if self._written >= self.max_samples:
                break
            image = Image.open(sample.img_path)
            name = f'{self._written:03d}_{sample.metainfo.get("task", "")}_' \
                   f'{osp.splitext(osp.basename(sample.img_path))[0]}.png'
            draw_prediction(image, sample).save(osp.join(self.out_dir, name))
            self._written += 1
