"""``REFVLMVisualizer``: one picture of a REF-VLM answer — what it points at, and what it says.

Per phrase one colour: the phrase's boxes, masks and keypoint skeletons in that colour on the
image, a depth colour map beside it when the answer decodes depth, and the readable answer under
it (tags stripped, each phrase written in its colour; the VD-CoT ``<Task>`` block only on
request). Small images are scaled up first so that the picture can be read.
"""
import math
from typing import List, Optional, Sequence, Tuple

import cv2
import mmcv
import numpy as np
import torch
from matplotlib import font_manager
from mmdet.structures import DetDataSample
from mmdet.visualization import DetLocalVisualizer
from mmengine.dist import master_only
from PIL import Image, ImageDraw, ImageFont

from mmrefvlm.registry import VISUALIZERS
from .answer_text import AnswerSpan, readable_answer, task_block

RGB = Tuple[int, int, int]
# Distinct, saturated colours that stay readable as text on white and as boxes on photographs.
PALETTE: Tuple[RGB, ...] = ((230, 25, 75), (0, 130, 200), (60, 180, 75), (245, 130, 48),
                            (145, 30, 180), (0, 160, 160), (240, 50, 230), (128, 128, 0),
                            (170, 110, 40), (0, 0, 128))
TEXT_COLOUR: RGB = (20, 20, 20)
_GLUED = '.,;:!?)\'"'


def sample_triplets(sample: DetDataSample) -> List[Tuple[str, Tuple[str, ...], int]]:
    """``(phrase, units, num_refs)`` per triplet of the generated answer, in ``<REF>`` order
    (the detector's ``pred_triplets``)."""
    return [(str(phrase), tuple(units), int(num)) for phrase, units, num in
            sample.get('pred_triplets', [])]


def row_triplets(sample: DetDataSample) -> List[int]:
    """The triplet index of each row of ``pred_instances`` (its ``group_ids``)."""
    pred = sample.pred_instances
    groups = pred.group_ids if 'group_ids' in pred else pred.labels
    return [int(g) for g in groups]


def phrase_colours(phrases: Sequence[str]) -> List[RGB]:
    """One colour per triplet; triplets of the same phrase share it."""
    order = {}
    for phrase in phrases:
        order.setdefault(phrase, len(order))
    return [PALETTE[order[phrase] % len(PALETTE)] for phrase in phrases]


@VISUALIZERS.register_module()
class REFVLMVisualizer(DetLocalVisualizer):
    """Draw a REF-VLM prediction (a ``DetDataSample`` in original pixels).

    Reads ``pred_instances`` by field name — ``bboxes [N, 4]`` xyxy, ``masks [N, H, W]``,
    ``keypoints [N, K, 3]`` (x, y, score), ``depth [N, H, W]`` metres, and ``group_ids`` (or
    ``labels``) giving each row's triplet — plus ``pred_depth_map`` (``[1, H, W]`` metres),
    ``pred_text`` and ``pred_triplets``. The keypoint skeleton comes from
    ``dataset_meta['skeleton']`` (pairs of 0-based keypoint indices).

    Args:
        name, image, vis_backends, save_dir: as :class:`mmengine.visualization.Visualizer`.
        line_width: box and skeleton line width, in pixels of the drawn picture.
        alpha: opacity of the masks.
        min_size: an image whose longer side is shorter is scaled up to this size.
        font_size: font size of the answer text, in pixels.
        show_task: also print the VD-CoT ``<Task>`` block above the answer.
    """

    def __init__(self, name: str = 'visualizer', image: Optional[np.ndarray] = None,
                 vis_backends: Optional[List[dict]] = None, save_dir: Optional[str] = None,
                 line_width: int = 3, alpha: float = 0.45, min_size: int = 512,
                 font_size: int = 18, show_task: bool = False) -> None:
        super().__init__(name=name, image=image, vis_backends=vis_backends, save_dir=save_dir,
                         line_width=line_width, alpha=alpha)
        self.min_size = min_size
        self.font_size = font_size
        self.show_task = show_task
        self.font = ImageFont.truetype(font_manager.findfont('DejaVu Sans'), font_size)

    @master_only
    def add_datasample(self, name: str, image: np.ndarray,
                       data_sample: Optional[DetDataSample] = None, draw_pred: bool = True,
                       show: bool = False, wait_time: float = 0,
                       out_file: Optional[str] = None, pred_score_thr: float = 0.0,
                       step: int = 0, show_task: Optional[bool] = None) -> None:
        """Draw ``data_sample``'s prediction on ``image`` and show, save or log the picture.

        Args:
            name: the picture's name for the visualisation backends.
            image: RGB ``uint8 [H, W, 3]``, the original image the prediction refers to.
            data_sample: the prediction; ``None`` or ``draw_pred=False`` draws the image alone.
            draw_pred: draw the prediction.
            show: display the picture in a window.
            wait_time: seconds to show it.
            out_file: write the picture here (then no backend gets it).
            pred_score_thr: rows whose ``scores`` are below are not drawn.
            step: global step for the backends.
            show_task: print the ``<Task>`` block; ``None`` takes the constructor's choice.
        """
        picture = self.draw_prediction(
            image, data_sample if draw_pred else None, pred_score_thr,
            self.show_task if show_task is None else show_task)
        self.set_image(picture)
        if show:
            self.show(picture, win_name=name, wait_time=wait_time)
        if out_file is not None:
            mmcv.imwrite(picture[..., ::-1], out_file)
        else:
            self.add_image(name, picture, step)

    def draw_prediction(self, image: np.ndarray, sample: Optional[DetDataSample],
                        score_thr: float = 0.0, show_task: bool = False) -> np.ndarray:
        """The picture as RGB ``uint8 [H', W', 3]``: the (scaled) image with the prediction,
        a depth panel on its right when there is depth, the answer text below."""
        scale = max(1.0, self.min_size / max(image.shape[:2]))
        canvas = mmcv.imrescale(image, scale, interpolation='bicubic') if scale > 1 else image
        if sample is None:
            return np.ascontiguousarray(canvas)
        triplets = sample_triplets(sample)
        colours = phrase_colours([phrase for phrase, _, _ in triplets])
        self.set_image(canvas)
        depth = None
        if 'pred_instances' in sample:
            depth = self._draw_instances_by_triplet(sample, colours, scale, score_thr)
        if depth is None and 'pred_depth_map' in sample:
            depth = sample.pred_depth_map.data[0]
        panels = [self.get_image()]
        if depth is not None:
            panels.append(depth_colour_map(_resize(_numpy(depth), panels[0].shape[:2])))
        picture = np.concatenate(panels, axis=1)
        lines = self._text_lines(sample.get('pred_text', ''), colours, show_task)
        return self._add_text(picture, lines)

    def _draw_instances_by_triplet(self, sample: DetDataSample, colours: List[RGB],
                                   scale: float, score_thr: float) -> Optional[np.ndarray]:
        """Masks, boxes with their phrase, keypoints; returns the union of the rows' ``depth``
        maps (``[H, W]``) when the rows carry one."""
        pred = sample.pred_instances.cpu()
        rows = [i for i in range(len(pred))
                if 'scores' not in pred or float(pred.scores[i]) >= score_thr]
        triplet_of = row_triplets(sample)
        phrases = [phrase for phrase, _, _ in sample_triplets(sample)]
        colour = [colours[triplet_of[i]] if triplet_of[i] < len(colours) else PALETTE[0]
                  for i in range(len(pred))]
        height, width = self.get_image().shape[:2]
        if 'masks' in pred and rows:
            masks = np.stack([_resize(_numpy(pred.masks[i]) > 0.5, (height, width))
                              for i in rows])
            drawn = [i for i, mask in zip(rows, masks) if mask.any()]
            if drawn:
                self.draw_binary_masks(masks[[rows.index(i) for i in drawn]],
                                       colors=[colour[i] for i in drawn], alphas=self.alpha)
        # an answer without <REF> has rows of no field at all, bboxes included
        boxes = _numpy(pred.bboxes).reshape(-1, 4) * scale if 'bboxes' in pred else None
        if boxes is not None:  # a box may reach past the image: draw the part inside it
            boxes = boxes.clip(0, [width - 1, height - 1, width - 1, height - 1])
        for i in rows if boxes is not None else []:
            if boxes[i, 2] <= boxes[i, 0] or boxes[i, 3] <= boxes[i, 1]:
                continue  # a unit without a box (e.g. depth) leaves an empty one
            self.draw_bboxes(boxes[i:i + 1], edge_colors=[colour[i]], alpha=1.0,
                             line_widths=self.line_width)
            if triplet_of[i] < len(phrases):
                self.draw_texts(phrases[triplet_of[i]], boxes[i, :2] + self.line_width,
                                colors='white', font_sizes=max(10, self.font_size - 4),
                                bboxes=[dict(facecolor=np.array(colour[i]) / 255, alpha=0.8,
                                             pad=0.5, edgecolor='none')])
        if 'keypoints' in pred:
            self._draw_keypoints(_numpy(pred.keypoints), rows, colour, scale)
        if 'depth' in pred and rows:
            return np.max(np.stack([_numpy(pred.depth[i]) for i in rows]), axis=0)
        return None

    def _draw_keypoints(self, keypoints: np.ndarray, rows: Sequence[int], colour: List[RGB],
                        scale: float) -> None:
        """Visible keypoints (third value > 0.5) as dots, joined along the skeleton."""
        skeleton = self.dataset_meta.get('skeleton') or []
        radius = max(2, self.line_width + 1)
        for i in rows:
            points = keypoints[i]
            if not points.any():
                continue  # a row of another unit
            visible = points[:, 2] > 0.5
            xy = points[:, :2] * scale
            for a, b in skeleton:
                if a < len(points) and b < len(points) and visible[a] and visible[b]:
                    self.draw_lines(xy[[a, b], 0], xy[[a, b], 1], colors=[colour[i]],
                                    line_widths=self.line_width)
            if visible.any():
                self.draw_circles(xy[visible], radius=np.full(int(visible.sum()), radius),
                                  edge_colors=[colour[i]], face_colors=[colour[i]])

    def _text_lines(self, text: str, colours: List[RGB],
                    show_task: bool) -> List[List[Tuple[str, RGB]]]:
        """The answer as words with colours, before wrapping; the task block first if asked."""
        lines = []
        if show_task and task_block(text):
            lines += [[(line, (110, 110, 110))] for line in task_block(text).splitlines()]
        words: List[Tuple[str, RGB]] = []
        for span in readable_answer(text):
            span_colour = _span_colour(span, colours)
            words += [(word, span_colour) for word in span.text.split()]
        return lines + [words]

    def _layout(self, words: List[Tuple[str, RGB]], width: int,
                margin: int) -> List[List[Tuple[float, str, RGB]]]:
        """Place words on lines of ``width`` pixels: ``[[(x, word, colour), ...], ...]``.
        Punctuation that opens a run (``dog`` then ``.``) sticks to the word before."""
        space = self.font.getlength(' ')
        lines: List[List[Tuple[float, str, RGB]]] = [[]]
        x = margin
        for word, colour in words:
            length = self.font.getlength(word)
            glued = bool(lines[-1]) and word[0] in _GLUED
            if not glued and lines[-1] and x + length > width - margin:
                lines.append([])
                x = margin
            if glued:
                x -= space
            lines[-1].append((x, word, colour))
            x += length + space
        return lines

    def _add_text(self, picture: np.ndarray,
                  paragraphs: List[List[Tuple[str, RGB]]]) -> np.ndarray:
        """``picture`` with the words written below it, wrapped to its width."""
        margin = max(4, self.font_size // 3)
        width = picture.shape[1]
        lines = [line for words in paragraphs for line in self._layout(words, width, margin)]
        line_height = math.ceil(self.font_size * 1.3)
        panel = Image.new('RGB', (width, 2 * margin + line_height * len(lines)), 'white')
        draw = ImageDraw.Draw(panel)
        for row, line in enumerate(lines):
            for x, word, colour in line:
                draw.text((x, margin + row * line_height), word, fill=colour, font=self.font)
        return np.concatenate([picture, np.asarray(panel)], axis=0)


def _span_colour(span: AnswerSpan, colours: List[RGB]) -> RGB:
    if span.triplet is None or span.triplet >= len(colours):
        return TEXT_COLOUR
    return colours[span.triplet]


def depth_colour_map(depth: np.ndarray) -> np.ndarray:
    """``[H, W]`` metres (0 = no depth) → RGB ``uint8 [H, W, 3]``: near warm, far cool, black
    where there is no depth."""
    valid = depth > 0
    out = np.zeros((*depth.shape, 3), np.uint8)
    if not valid.any():
        return out
    near, far = float(depth[valid].min()), float(depth[valid].max())
    scaled = (far - depth) / max(far - near, 1e-6) * 255
    coloured = cv2.applyColorMap(scaled.clip(0, 255).astype(np.uint8), cv2.COLORMAP_TURBO)
    out[valid] = coloured[valid][:, ::-1]
    return out


def _numpy(value) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def _resize(array: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a ``[h, w]`` map to ``size = (H, W)``."""
    if array.shape[:2] == tuple(size):
        return array
    dtype = array.dtype
    resized = cv2.resize(array.astype(np.float32), (size[1], size[0]),
                         interpolation=cv2.INTER_NEAREST)
    return resized.astype(dtype)
