"""A browser demo of REF-VLM: upload an image, mark a region, ask, and see the answer drawn.

    python demo/gradio_app.py [--config CONFIG] [--weights CKPT] [--port 7860] [--device cpu]

By default it loads the main job's model (``make demo``): the tiny config and the last
checkpoint in ``work_dirs/refvlm_tiny/``. ``--config`` also takes a directory written by
``tools/model_converters/export_hf.py``.

Visual prompts are drawn by clicking on the image: one click for a point, two opposite corners
for a box, a polyline for a scribble, a polygon for a mask (its corners). The prompt goes with
the next question; questions without ``<region>`` get it appended. Every answer continues the
conversation about the image until "New conversation" or a new image.
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_CONFIG = osp.join('configs', 'refvlm', 'refvlm_tinyllama_tinyconv_stage2_synthetic.py')
DEFAULT_WORK_DIR = osp.join('work_dirs', 'refvlm_tiny')
PROMPT_TYPES = ('none', 'point', 'box', 'scribble', 'mask')
# what a click-drawn prompt needs before it can be used
MIN_CLICKS = {'point': 1, 'box': 2, 'scribble': 2, 'mask': 3}
# the task menu: asking for a unit (the task follows from it and the prompt), or a task
TASK_CHOICES = ('box', 'mask', 'keypoint', 'depth', 'caption', 'vqa', 'reg', 'gcg_box',
                'gcg_mask', 'ovd', 'ovs')
PROMPT_COLOUR = (255, 215, 0)
# small images are shown (and clicked on) scaled up to this longer side
DISPLAY_SIZE = 512


def last_checkpoint(work_dir: str) -> str:
    """The checkpoint MMEngine recorded last in ``work_dir`` (its ``last_checkpoint`` file).

    Raises:
        FileNotFoundError: no checkpoint there, with what to do about it.
    """
    record = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(record):
        with open(record, encoding='utf-8') as file:
            path = file.read().strip()
        if osp.isfile(path):
            return path
    found = sorted((f for f in os.listdir(work_dir) if f.endswith('.pth')),
                   key=lambda f: osp.getmtime(osp.join(work_dir, f))) \
        if osp.isdir(work_dir) else []
    if not found:
        raise FileNotFoundError(f'no checkpoint in {work_dir}: train the main job first '
                                '(make demo) or pass --config and --weights')
    return osp.join(work_dir, found[-1])


def clicked_prompt(kind: str, clicks: Sequence[Tuple[float, float]],
                   shape: Tuple[int, int]) -> List[dict]:
    """The visual prompt drawn by ``clicks`` (original pixels ``(x, y)``) as a record prompt;
    ``[]`` when there is no prompt type or too few clicks.

    Args:
        kind: one of :data:`PROMPT_TYPES`.
        clicks: the clicks in order.
        shape: ``(H, W)`` of the image (a mask polygon is rasterised at this size).
    """
    if kind == 'none' or len(clicks) < MIN_CLICKS[kind]:
        return []
    points = np.asarray(clicks, dtype=np.float64)
    if kind == 'point':
        return [dict(type='point', data=points[-1].tolist())]
    if kind == 'box':
        (x1, y1), (x2, y2) = points[-2:].min(0), points[-2:].max(0)
        return [dict(type='box', data=[x1, y1, max(x2 - x1, 1.0), max(y2 - y1, 1.0)])]
    if kind == 'scribble':
        return [dict(type='scribble', data=points.tolist())]
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32).reshape(-1, 1, 2)], 1)
    return [dict(type='mask', data=mask.astype(bool))]


def display_scale(image: np.ndarray) -> float:
    """How much ``image`` is enlarged on screen (1 for images of ``DISPLAY_SIZE`` or more)."""
    return max(1.0, DISPLAY_SIZE / max(image.shape[:2]))


def draw_clicks(image: np.ndarray, kind: str, clicks: Sequence[Tuple[float, float]]) -> np.ndarray:
    """``image`` (RGB, original pixels) enlarged for display (:func:`display_scale`), with the
    prompt being drawn: dots, and the box / line / polygon; ``clicks`` in original pixels."""
    scale = display_scale(image)
    canvas = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC) \
        if scale > 1 else image.copy()
    size = max(canvas.shape[:2])
    width, radius = max(1, size // 200), max(2, size // 100)
    points = [tuple(int(round(v * scale)) for v in p) for p in clicks]
    if kind == 'box' and len(points) >= 2:
        cv2.rectangle(canvas, points[-2], points[-1], PROMPT_COLOUR, width)
    elif kind in ('scribble', 'mask') and len(points) >= 2:
        cv2.polylines(canvas, [np.array(points, np.int32).reshape(-1, 1, 2)], kind == 'mask',
                      PROMPT_COLOUR, width)
    for point in points[-1:] if kind == 'point' else points:
        cv2.circle(canvas, point, radius, PROMPT_COLOUR, -1)
    return canvas


class DemoSession:
    """What the app does with a request, apart from the widgets (testable without a browser).

    Args:
        inferencer: a :class:`mmrefvlm.apis.REFVLMInferencer`.
    """

    def __init__(self, inferencer) -> None:
        self.inferencer = inferencer

    def ask(self, image: np.ndarray, question: str, task: str, prompts: List[dict],
            history: List[Tuple[str, str]], all_prompts: List[dict]) -> Tuple[dict, np.ndarray,
                                                                            str]:
        """Answer ``question`` about ``image`` (RGB) after ``history``.

        Returns:
            ``(prediction dict, picture RGB, question as asked)``; the question carries a
            ``<region>`` for each new prompt it did not mention.
        """
        if prompts and question.count('<region>') < len(prompts):
            question = f'{question} ' + ', '.join(['<region>'] * len(prompts))
        result = self.inferencer(
            dict(img=np.ascontiguousarray(image[..., ::-1]), text=question, task=task,
                 visual_prompts=all_prompts + prompts, history=history), return_vis=True)
        return result['predictions'][0], result['visualization'][0], question


def build_app(inferencer, title: str = 'REF-VLM'):
    """The Gradio ``Blocks`` of the demo around ``inferencer``."""
    import gradio as gr

    session = DemoSession(inferencer)
    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(f'## {title}\nUpload an image, optionally choose a prompt type and click '
                    'on the image to draw it, pick what to ask for, and ask.')
        original = gr.State(None)   # RGB [H, W, 3] as uploaded
        clicks = gr.State([])        # [(x, y), ...] original pixels
        history = gr.State([])       # [(question as asked, generated text), ...]
        used_prompts = gr.State([])  # visual prompts of the earlier turns
        with gr.Row():
            with gr.Column():
                image = gr.Image(label='Image (click to draw the prompt)', type='numpy',
                                 sources=['upload'], elem_id='prompt-image', height=420)
                kind = gr.Radio(list(PROMPT_TYPES), value='none', label='Visual prompt',
                                elem_id='prompt-type')
                clear = gr.Button('Clear prompt')
                task = gr.Dropdown(list(TASK_CHOICES), value='box', allow_custom_value=True,
                                   label='Ask for (unit or task)', elem_id='task')
            with gr.Column():
                overlay = gr.Image(label='Answer', interactive=False, elem_id='overlay',
                                   height=420)
                chat = gr.Chatbot(label='Conversation', elem_id='chat', height=260)
                question = gr.Textbox(label='Question', elem_id='question',
                                      placeholder='Please locate the red circle in the image.')
                with gr.Row():
                    ask = gr.Button('Ask', variant='primary', elem_id='ask')
                    restart = gr.Button('New conversation')

        def on_upload(img):
            return draw_clicks(img, 'none', []), img, [], [], [], [], None

        def on_click(img, kind_value, points, evt: gr.SelectData):
            if img is None or kind_value == 'none':
                return gr.update(), points
            scale = display_scale(img)  # the click is in the enlarged picture's pixels
            points = [*points, (evt.index[0] / scale, evt.index[1] / scale)]
            return draw_clicks(img, kind_value, points), points

        def on_clear(img):
            return draw_clicks(img, 'none', []), []

        def on_restart(img):
            shown = gr.update() if img is None else draw_clicks(img, 'none', [])
            return shown, [], [], [], [], None

        def on_ask(img, text, task_value, kind_value, points, turns, earlier, messages):
            if img is None:
                raise gr.Error('Upload an image first.')
            if not text.strip():
                raise gr.Error('Type a question.')
            prompts = clicked_prompt(kind_value, points, img.shape[:2])
            if kind_value != 'none' and not prompts:
                raise gr.Error(f'A {kind_value} prompt needs {MIN_CLICKS[kind_value]} clicks on '
                               'the image.')
            prediction, picture, asked = session.ask(img, text, task_value, prompts, turns,
                                                     earlier)
            messages = [*messages, dict(role='user', content=text),
                        dict(role='assistant', content=prediction['answer'] or '(no text)')]
            # the drawn prompt stays on the image until the next click starts a new one
            return (picture, messages, [*turns, (asked, prediction['text'])],
                    [*earlier, *prompts], [], '')

        image.upload(on_upload, image,
                     [image, original, clicks, history, used_prompts, chat, overlay])
        image.select(on_click, [original, kind, clicks], [image, clicks])
        clear.click(on_clear, original, [image, clicks])
        restart.click(on_restart, original,
                      [image, clicks, history, used_prompts, chat, overlay])
        inputs = [original, question, task, kind, clicks, history, used_prompts, chat]
        outputs = [overlay, chat, history, used_prompts, clicks, question]
        ask.click(on_ask, inputs, outputs, api_name='ask')
        question.submit(on_ask, inputs, outputs)
    return app


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='REF-VLM browser demo')
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help='config file or exported directory (default: the main job)')
    parser.add_argument('--weights', default=None,
                        help=f'checkpoint (default: the last one in {DEFAULT_WORK_DIR}/)')
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=7860)
    parser.add_argument('--device', default=None)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    sys.path.insert(0, REPO)
    from mmrefvlm.apis import REFVLMInferencer
    from mmrefvlm.apis.hf_export import is_exported_dir

    weights = args.weights
    if weights is None and not is_exported_dir(args.config):
        weights = last_checkpoint(DEFAULT_WORK_DIR)
    inferencer = REFVLMInferencer(args.config, weights=weights, device=args.device,
                                  show_progress=False)
    build_app(inferencer).launch(server_name=args.host, server_port=args.port)


if __name__ == '__main__':
    main()
