"""Draw what the pipeline hands the model, one PNG per sample (MMDet's browse_dataset, for
VT-Instruct).

    python tools/analysis_tools/browse_dataset.py CONFIG --output-dir DIR [--num 10]
        [--split train|val|test] [--cfg-options KEY=VALUE ...]

``--split val`` on a config without a val loader (``val_dataloader = None``, as in the main
configs, which evaluate with ``tools/test.py``) shows the test loader's samples and says so.

Each PNG shows the canvas image with the target boxes, masks and keypoints (coloured by triplet
group, skeleton from the data set's meta), the visual prompts (yellow), and below it the text the
model reads, decoded from ``input_ids`` (runs of ``<image>``/``<region>`` collapsed to
``<image>xN``) and, for the val and test splits, the held-out answer.
"""
import argparse
import os
import os.path as osp
import re
import sys
import textwrap
from typing import TYPE_CHECKING, List, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from cli_args import CfgOptionsAction  # noqa: E402

if TYPE_CHECKING:
    from mmengine.config import Config

PALETTE = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (0, 128, 128), (170, 110, 40)]
PROMPT_COLOR = (255, 225, 25)
PANEL_CHARS_PER_PX = 1 / 6.2  # the PIL default font is about 6 px per character
MIN_PANEL_WIDTH = 480


def collapse_placeholders(text: str) -> str:
    """Write runs of ``<image>`` / ``<region>`` as ``<image>xN`` / ``<region>xN``."""
    for token in ('<image>', '<region>'):
        text = re.sub(f'(?:{re.escape(token)})+',
                      lambda m, t=token: f'{t}x{len(m.group(0)) // len(t)}', text)
    return text


def dataloader_key(cfg: 'Config', split: str) -> str:
    """The config key of ``split``'s loader: ``test_dataloader`` for ``val`` when the config
    has no val loader (said on stderr).

    Raises:
        ValueError: when the config has no loader for ``split``.
    """
    key = f'{split}_dataloader'
    if split == 'val' and cfg.get(key) is None and cfg.get('test_dataloader') is not None:
        print('browse_dataset: the config has no val_dataloader (None): showing '
              'test_dataloader', file=sys.stderr)
        key = 'test_dataloader'
    if cfg.get(key) is None:
        raise ValueError(f'browse_dataset: the config has no {key} (missing or None)')
    return key


def build_dataset(cfg: 'Config', split: str):
    """The dataset of ``split``'s loader in ``cfg`` (see :func:`dataloader_key`)."""
    from mmengine.registry import init_default_scope

    import mmrefvlm  # noqa: F401  (registers the transforms and datasets)
    from mmrefvlm.registry import DATASETS
    init_default_scope(cfg.get('default_scope', 'mmrefvlm'))
    return DATASETS.build(cfg[dataloader_key(cfg, split)]['dataset'])


def find_tokenizer(dataset):
    """The tokenizer of the dataset's ``TokenizeConversation`` transform."""
    from mmrefvlm.datasets.transforms import TokenizeConversation
    for transform in dataset.pipeline.transforms:
        if isinstance(transform, TokenizeConversation):
            return transform.tokenizer
    raise ValueError('browse_dataset: the pipeline has no TokenizeConversation transform')


def draw_targets(image: np.ndarray, sample, skeleton: Sequence[Sequence[int]]) -> np.ndarray:
    """Draw prompts and targets on the RGB canvas ``image [S, S, 3]``."""
    from mmengine.visualization import Visualizer
    vis = Visualizer(image=image)
    prompts = sample.get('prompt_masks')
    if prompts is not None and len(prompts):
        vis.draw_binary_masks(prompts.numpy().astype(bool), colors=[PROMPT_COLOR] * len(prompts),
                              alphas=0.5)
    gt = sample.gt_instances
    colors = [PALETTE[int(g) % len(PALETTE)] for g in gt.group_ids]
    if 'masks' in gt and len(gt):
        vis.draw_binary_masks(gt.masks.to_ndarray().astype(bool), colors=colors, alphas=0.4)
    if len(gt):
        vis.draw_bboxes(gt.bboxes, edge_colors=colors, line_widths=2)
    if 'keypoints' in gt:
        for keypoints, color in zip(gt.keypoints.numpy(), colors):
            visible = keypoints[:, 2] > 0
            for i, j in skeleton:
                if visible[i] and visible[j]:
                    vis.draw_lines(keypoints[[i, j], 0], keypoints[[i, j], 1], colors=color)
            if visible.any():
                count = int(visible.sum())
                vis.draw_points(keypoints[visible, :2], colors=[color] * count,
                                sizes=np.full(count, 20))
    return vis.get_image()


def text_panel(text: str, width: int) -> np.ndarray:
    """White ``[h, width, 3]`` panel with ``text`` wrapped to the width."""
    chars = max(int(width * PANEL_CHARS_PER_PX), 20)
    lines: List[str] = []
    for paragraph in text.split('\n'):
        lines += textwrap.wrap(paragraph, chars, replace_whitespace=False) or ['']
    font = ImageFont.load_default()
    line_height = 12
    panel = Image.new('RGB', (width, line_height * len(lines) + 8), (255, 255, 255))
    draw = ImageDraw.Draw(panel)
    for row, line in enumerate(lines):
        draw.text((4, 4 + row * line_height), line, fill=(0, 0, 0), font=font)
    return np.asarray(panel)


def render_sample(item: dict, tokenizer, skeleton: Sequence[Sequence[int]]) -> np.ndarray:
    """The PNG content of one pipeline output ``dict(inputs, data_samples)``."""
    sample = item['data_samples']
    image = item['inputs'].numpy().transpose(1, 2, 0)[..., ::-1].copy()  # BGR → RGB
    drawn = draw_targets(image, sample, skeleton)
    text = collapse_placeholders(
        tokenizer.decode(sample.input_ids.tolist(), skip_special_tokens=False))
    if sample.metainfo.get('gt_answer') is not None:
        text += f"\n--- held-out answer ---\n{sample.metainfo['gt_answer']}"
    header = f"{sample.metainfo.get('img_id')} [{sample.metainfo.get('task')}]"
    width = max(drawn.shape[1], MIN_PANEL_WIDTH)
    drawn = np.pad(drawn, ((0, 0), (0, width - drawn.shape[1]), (0, 0)), constant_values=255)
    return np.concatenate([drawn, text_panel(f'{header}\n{text}', width)], axis=0)


def browse(cfg: 'Config', output_dir: str, num: int = 10, split: str = 'train') -> List[str]:
    """Write the first ``num`` samples of the split as PNGs; return their paths."""
    dataset = build_dataset(cfg, split)
    tokenizer = find_tokenizer(dataset)
    skeleton = dataset.metainfo.get('skeleton', [])
    os.makedirs(output_dir, exist_ok=True)
    paths = []
    for index in range(min(num, len(dataset))):
        png = render_sample(dataset[index], tokenizer, skeleton)
        path = osp.join(output_dir, f'{split}_{index:05d}.png')
        Image.fromarray(png).save(path)
        paths.append(path)
    return paths


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Browse a VT-Instruct dataset')
    parser.add_argument('config', help='config file')
    parser.add_argument('--output-dir', required=True, help='where to write the PNGs')
    parser.add_argument('--num', type=int, default=10, help='how many samples')
    parser.add_argument('--split', choices=('train', 'val', 'test'), default='train',
                        help='val falls back to test when the config has no val loader')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config settings, KEY=VALUE')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from mmengine.config import Config
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    try:
        dataloader_key(cfg, args.split)
    except ValueError as error:
        sys.exit(str(error))
    paths = browse(cfg, args.output_dir, args.num, args.split)
    print(f'browse_dataset: wrote {len(paths)} images to {args.output_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
