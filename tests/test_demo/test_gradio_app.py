"""demo/gradio_app.py in a real browser: Debian's Chromium driven by Playwright on 127.0.0.1.

Upload an image, choose a box prompt, draw it with two clicks, ask, and wait for the answer in
the chat and the drawn answer in the overlay; the screenshot must show both the gold prompt box
on the image and the answer's box, in its phrase's colour, on the overlay. The model's answer is
scripted (a random LM rarely writes a triplet, and generating it would cost most of the test),
so the router, the box head and the visualiser run on a known answer. The screenshot is written
to ``$REFVLM_SCREENSHOT_DIR`` (default: the test's temporary directory).
"""
import json
import os
import os.path as osp
import socket

import numpy as np
import pytest
from PIL import Image

from mmrefvlm.apis import REFVLMInferencer
from mmrefvlm.testing import load_script, script_generation
from mmrefvlm.visualization.refvlm_visualizer import phrase_colours

ANSWER = '<Phrase>the red circle</Phrase>(<Unit>box</Unit>[0]<REF>)'
# the browser the set-up installs (tools/setup_env.sh step 2)
CHROMIUM = os.environ.get('MMREFVLM_CHROMIUM', '/usr/bin/chromium')
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
                  '--no-first-run', '--disable-background-networking',
                  '--disable-component-update', '--disable-sync']


def _app_module():
    return load_script('demo/gradio_app.py')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _first_rec_image(data_root: str) -> str:
    with open(osp.join(data_root, 'val.jsonl'), encoding='utf-8') as lines:
        for line in lines:
            record = json.loads(line)
            if record['task'] == 'rec':
                return osp.join(data_root, record['image'])
    raise AssertionError('no REC record in the generated set')


def test_click_drawn_prompts_become_record_prompts():
    app = _app_module()
    assert app.clicked_prompt('box', [(30, 5), (10, 25)], (40, 40)) == [
        dict(type='box', data=[10.0, 5.0, 20.0, 20.0])]
    assert app.clicked_prompt('point', [(1, 2), (3, 4)], (8, 8)) == [
        dict(type='point', data=[3.0, 4.0])]
    assert app.clicked_prompt('box', [(1, 2)], (8, 8)) == []
    mask, = app.clicked_prompt('mask', [(2, 2), (12, 2), (12, 12), (2, 12)], (16, 16))
    assert mask['type'] == 'mask' and mask['data'][2:12, 2:12].all() and not mask['data'][0].any()
    drawn = app.draw_clicks(np.zeros((600, 600, 3), np.uint8), 'box', [(5, 5), (30, 30)])
    assert (drawn[5, 5:30] == app.PROMPT_COLOUR).all()
    small = app.draw_clicks(np.zeros((40, 20, 3), np.uint8), 'box', [(5, 5), (15, 30)])
    assert small.shape == (512, 256, 3) and (small[64, 64:192] == app.PROMPT_COLOUR).all()


def _colour_share(picture: np.ndarray, box: dict, colour, tolerance: int = 12) -> float:
    """The share of the pixels of ``box`` (a page element's bounding box) in ``picture``
    (the RGB screenshot) within ``tolerance`` of ``colour`` in every channel."""
    x0, y0 = int(box['x']), int(box['y'])
    crop = picture[y0:y0 + int(box['height']), x0:x0 + int(box['width'])].astype(int)
    return float((np.abs(crop - np.array(colour)) <= tolerance).all(-1).mean())


def _wait_for_new_picture(page, picture, old_src: str) -> str:
    """Wait until the app has replaced ``picture`` (its ``src`` changed); return the new one."""
    # queried on every poll: the app may replace the <img> element itself
    page.wait_for_function('old => { const el = document.querySelector("#prompt-image img"); '
                           'return el && el.src && el.src !== old; }', arg=old_src, timeout=90000)
    return picture.get_attribute('src')


def test_the_demo_in_a_browser(tiny_cfg, tiny_data, tmp_path, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    app_module = _app_module()
    asked = []
    ask = app_module.DemoSession.ask

    def recording_ask(self, image, question, task, prompts, history, earlier):
        asked.append((image.shape, question, prompts))
        return ask(self, image, question, task, prompts, history, earlier)

    monkeypatch.setattr(app_module.DemoSession, 'ask', recording_ask)
    with pytest.warns(UserWarning, match='randomly initialised'):
        inferencer = REFVLMInferencer(tiny_cfg, device='cpu', show_progress=False)
    script_generation(inferencer.model, ANSWER)
    app = app_module.build_app(inferencer)
    port = _free_port()
    app.launch(server_name='127.0.0.1', server_port=port, prevent_thread_lock=True, quiet=True)
    screenshot = osp.join(os.environ.get('REFVLM_SCREENSHOT_DIR', str(tmp_path)),
                          'gradio_demo.png')
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport=dict(width=1280, height=1000))
            page.goto(f'http://127.0.0.1:{port}/')
            page.locator('#prompt-image input[type=file]').set_input_files(
                _first_rec_image(tiny_data))
            picture = page.locator('#prompt-image img')
            expect(picture).to_be_visible(timeout=30000)
            # the app's answer to the upload: the image enlarged for display, no clicks yet
            page.wait_for_function('size => { const el = document.querySelector('
                                   '"#prompt-image img"); return el && el.naturalWidth >= size; }',
                                   arg=app_module.DISPLAY_SIZE, timeout=30000)
            src = picture.get_attribute('src')
            page.locator('#prompt-type').get_by_label('box').check()
            for fx, fy in ((0.2, 0.25), (0.7, 0.8)):
                # clicked through the locator: Playwright waits until the picture is visible and
                # no longer moving, then clicks at the offset inside it (a bounding box taken once
                # before the clicks could be stale while the app lays the enlarged picture out)
                box = picture.bounding_box()
                picture.click(position=dict(x=fx * box['width'], y=fy * box['height']))
                src = _wait_for_new_picture(page, picture, src)  # the prompt, redrawn
            page.locator('#question textarea').fill('Please locate the red circle in the image.')
            page.locator('#ask').click()
            expect(page.locator('#overlay img')).to_be_visible(timeout=60000)
            answer = page.locator('#chat [data-testid="bot"]').last
            expect(answer).to_contain_text('the red circle', timeout=30000)
            prompt_box, overlay_box = picture.bounding_box(), \
                page.locator('#overlay img').bounding_box()
            page.screenshot(path=screenshot, full_page=True)
            browser.close()
    finally:
        app.close()
    (shape, question, prompts), = asked
    assert question == 'Please locate the red circle in the image.'
    (prompt, ) = prompts
    x, y, w, h = prompt['data']
    assert prompt['type'] == 'box' and w > shape[1] / 4 and h > shape[0] / 4
    assert x == pytest.approx(0.2 * shape[1], abs=3) and y == pytest.approx(0.25 * shape[0], abs=3)
    # the screenshot: the gold prompt on the image, the answer's box in its phrase's colour on
    # the overlay, each much more than in the other picture, which shows the same scene (thin
    # lines scaled by the browser: few pixels keep the exact colour, hence the low floors)
    shot = np.asarray(Image.open(screenshot).convert('RGB'))
    for colour, where, other in ((app_module.PROMPT_COLOUR, prompt_box, overlay_box),
                                 (phrase_colours(['the red circle'])[0], overlay_box, prompt_box)):
        share, elsewhere = _colour_share(shot, where, colour), _colour_share(shot, other, colour)
        assert share > 1e-4 and share > 5 * elsewhere, (colour, share, elsewhere)
