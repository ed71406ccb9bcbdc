"""Convert COCO person keypoints (``person_keypoints_*.json``) to keypoint / ig_keypoint records.

Example::

    python tools/dataset_converters/cocokpt2vtinstruct.py \
        data/coco/annotations/person_keypoints_val2017.json \
        --out data/vtinstruct/coco_kpt_val.jsonl --image-prefix val2017/ --prompt-types box,point

Writes ``meta.json`` (class, the 17 keypoint names, COCO OKS sigmas, 0-based skeleton) beside
the output.
"""
import os.path as osp
import sys
from typing import TYPE_CHECKING, List, Optional

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from converter_args import comma_list, converter_parser, given  # noqa: E402

if TYPE_CHECKING:
    from mmrefvlm.datasets.converters import ConversionSummary


def parse_args(argv: Optional[List[str]] = None):
    parser = converter_parser(__doc__)
    parser.add_argument('ann_file', help='COCO person_keypoints_*.json')
    parser.add_argument('--tasks', type=comma_list, default=None,
                        help='comma-separated subset of keypoint,ig_keypoint (default: all)')
    parser.add_argument('--prompt-types', type=comma_list, default=None,
                        help='ig_keypoint prompt types drawn from, of point,box,scribble,mask '
                        '(default: all)')
    parser.add_argument('--id-prefix', default='cocokpt', help='prefix of the record ids')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> 'ConversionSummary':
    args = parse_args(argv)
    from mmrefvlm.datasets.converters import (ConversionSummary, convert_coco_keypoints,
                                              keypoint_meta)
    from mmrefvlm.datasets.converters.cli import finish, progress_bar
    from mmrefvlm.datasets.converters.coco_annotations import load_json
    meta = keypoint_meta(load_json(args.ann_file))
    summary = ConversionSummary()
    records = convert_coco_keypoints(
        args.ann_file, summary, seed=args.seed,
        **given(tasks=args.tasks, prompt_types=args.prompt_types),
        id_prefix=args.id_prefix, image_prefix=args.image_prefix or '',
        progress=progress_bar('images'))
    return finish(args.out, records, summary, meta)


if __name__ == '__main__':
    main()
