"""Ask REF-VLM about one image (or a directory of images) from the command line.

    python demo/image_demo.py IMG "PROMPT" CONFIG --weights CKPT \
        [--box X1 Y1 X2 Y2 | --point X Y | --scribble X Y X Y ... | --mask PNG] \
        [--task TASK_OR_UNIT] [--out-dir outputs] [--device cpu] [--show-task]

Prints the readable answer and its triplets, writes the picture to ``OUT_DIR/vis/NAME.png`` and
the predictions to ``OUT_DIR/preds/NAME.json`` (boxes xyxy, masks as COCO RLE, keypoints, depth,
all in original pixels). ``CONFIG`` may also be a directory written by
``tools/model_converters/export_hf.py`` (then no ``--weights``).
"""
import argparse
import json
import os.path as osp
import sys
from typing import List, Optional

import mmcv


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Ask REF-VLM about an image')
    parser.add_argument('inputs', help='an image file or a directory of images')
    parser.add_argument('prompt', help='the question, e.g. "Please locate the dog in the image."')
    parser.add_argument('model', help='config file, or an exported directory')
    parser.add_argument('--weights', help='checkpoint of the config')
    prompt = parser.add_mutually_exclusive_group()
    prompt.add_argument('--box', type=float, nargs=4, metavar=('X1', 'Y1', 'X2', 'Y2'),
                        help='a box visual prompt, original pixels')
    prompt.add_argument('--point', type=float, nargs=2, metavar=('X', 'Y'),
                        help='a point visual prompt, original pixels')
    prompt.add_argument('--scribble', type=float, nargs='+', metavar='XY',
                        help='a scribble visual prompt: x1 y1 x2 y2 ... (original pixels)')
    prompt.add_argument('--mask', metavar='PNG',
                        help='a mask visual prompt: an image of the original size, non-zero '
                        'pixels selected')
    parser.add_argument('--task', help='task or unit to ask for (box, mask, keypoint, depth, '
                        'rec, res, reg, caption, vqa, ...); default: box')
    parser.add_argument('--out-dir', default='outputs', help='where vis/ and preds/ go')
    parser.add_argument('--device', default=None, help="e.g. 'cpu' or 'cuda:0'")
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--show', action='store_true', help='display the picture')
    parser.add_argument('--show-task', action='store_true',
                        help='print the <Task> block in the picture')
    parser.add_argument('--no-save-vis', action='store_true', help='do not write pictures')
    parser.add_argument('--no-save-pred', action='store_true', help='do not write JSON')
    return parser.parse_args(argv)


def visual_prompts(args: argparse.Namespace) -> List[dict]:
    """The visual prompt of the flags, in the VT-Instruct record format."""
    if args.box is not None:
        x1, y1, x2, y2 = args.box
        if x2 <= x1 or y2 <= y1:
            raise SystemExit(f'--box: need x1 < x2 and y1 < y2, got {args.box}')
        return [dict(type='box', data=[x1, y1, x2 - x1, y2 - y1])]
    if args.point is not None:
        return [dict(type='point', data=list(args.point))]
    if args.scribble is not None:
        if len(args.scribble) < 2 or len(args.scribble) % 2:
            raise SystemExit(f'--scribble: give x y pairs, got {len(args.scribble)} numbers')
        xy = args.scribble
        return [dict(type='scribble', data=[[xy[i], xy[i + 1]] for i in range(0, len(xy), 2)])]
    if args.mask is not None:
        mask = mmcv.imread(args.mask, flag='grayscale')
        if mask is None:
            raise SystemExit(f'--mask: cannot read {args.mask}')
        return [dict(type='mask', data=mask > 0)]
    return []


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    from mmrefvlm.apis import REFVLMInferencer

    inferencer = REFVLMInferencer(args.model, weights=args.weights, device=args.device,
                                  show_progress=False)
    result = inferencer(args.inputs, texts=args.prompt, task=args.task,
                        visual_prompts=visual_prompts(args), batch_size=args.batch_size,
                        show=args.show, show_task=args.show_task,
                        no_save_vis=args.no_save_vis, no_save_pred=args.no_save_pred,
                        out_dir=args.out_dir)
    for prediction in result['predictions']:
        print(f'answer: {prediction["answer"]}')
        for ref in prediction['refs']:
            print(f'  {ref["phrase"]!r} ({", ".join(ref["units"])}): box '
                  f'{json.dumps(ref["bbox"])}')
    if args.out_dir and not (args.no_save_vis and args.no_save_pred):
        print(f'results written to {osp.abspath(args.out_dir)}')
    return result


if __name__ == '__main__':
    main()
