"""Time to first answer of the browser demo, as a user meets it.

    python tools/benchmark/demo_latency.py [--config CONFIG --weights CKPT] --image IMG
        [--question "Please locate the red circle in the image."] [--requests 5]

Starts ``demo/gradio_app.py`` in a new process on 127.0.0.1, then drives Debian's Chromium
(``/usr/bin/chromium``) with Playwright: load the page, upload ``--image``, ask. Prints the
start-up time (process start to the page answering), the first answer (click to the overlay
picture) and the following requests (median and max).
"""
import argparse
import os.path as osp
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from typing import List, Optional

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
                  '--no-first-run', '--disable-background-networking',
                  '--disable-component-update', '--disable-sync']


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Browser demo latency')
    parser.add_argument('--config', help='as demo/gradio_app.py (default: the main job)')
    parser.add_argument('--weights', help='as demo/gradio_app.py')
    parser.add_argument('--image', required=True, help='the image to upload')
    parser.add_argument('--question', default='Please locate the red circle in the image.')
    parser.add_argument('--requests', type=int, default=5, help='requests after the first')
    parser.add_argument('--chromium', default='/usr/bin/chromium')
    return parser.parse_args(argv)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def wait_until_serving(url: str, process: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f'the demo exited with {process.returncode}')
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f'the demo did not answer on {url} within {timeout:.0f} s')


def ask_and_wait(page, question: str) -> float:
    """Seconds from clicking Ask in a new conversation to its answer's overlay and message."""
    page.get_by_role('button', name='New conversation').click()
    page.locator('#overlay img').wait_for(state='detached', timeout=60000)
    page.locator('#question textarea').fill(question)
    start = time.perf_counter()
    page.locator('#ask').click()
    page.locator('#chat [data-testid="bot"]').first.wait_for(timeout=600000)
    page.locator('#overlay img').wait_for(timeout=600000)
    return time.perf_counter() - start


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    from playwright.sync_api import sync_playwright

    port = _free_port()
    command = [sys.executable, osp.join(REPO, 'demo', 'gradio_app.py'), '--port', str(port)]
    command += ['--config', args.config] if args.config else []
    command += ['--weights', args.weights] if args.weights else []
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO)
    try:
        url = f'http://127.0.0.1:{port}/'
        wait_until_serving(url, process)
        startup = time.perf_counter() - start
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium,
                                                 args=CHROMIUM_FLAGS)
            page = browser.new_page()
            page.goto(url)
            page.locator('#prompt-image input[type=file]').set_input_files(args.image)
            page.locator('#prompt-image img').wait_for(timeout=60000)
            first = ask_and_wait(page, args.question)
            later = [ask_and_wait(page, args.question) for _ in range(args.requests)]
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
    print(f'start-up (process start to page served): {startup:.1f} s')
    print(f'first answer after upload (click to overlay): {first:.2f} s')
    if later:
        print(f'next {len(later)} requests (each a new conversation): median '
              f'{statistics.median(later):.2f} s, max {max(later):.2f} s')
    return dict(startup=startup, first=first, later=later)


if __name__ == '__main__':
    main()
