"""Convert COCO person keypoints (``person_keypoints_*.json``) to keypoint / ig_keypoint records.

Example::

    python tools/dataset_converters/cocokpt2vtinstruct.py \
        data/coco/annotations/person_keypoints_val2017.json \
        --out data/vtinstruct/coco_kpt_val.jsonl --image-prefix val2017/ --prompt-types box,point

Writes ``meta.json`` (class, the 17 keypoint names, COCO OKS sigmas, 0-based skeleton) beside
the output.
"""
from typing import List, Optional

from mmrefvlm.datasets.converters import (KEYPOINT_TASKS, ConversionSummary,
                                          convert_coco_keypoints, keypoint_meta)
from mmrefvlm.datasets.converters.cli import comma_list, converter_parser, finish, progress_bar
from mmrefvlm.datasets.converters.coco_annotations import load_json
from mmrefvlm.datasets.renderers import PROMPT_TYPES


def parse_args(argv: Optional[List[str]] = None):
    parser = converter_parser(__doc__)
    parser.add_argument('ann_file', help='COCO person_keypoints_*.json')
    parser.add_argument('--tasks', type=comma_list, default=list(KEYPOINT_TASKS),
                        help='comma-separated subset of keypoint,ig_keypoint')
    parser.add_argument('--prompt-types', type=comma_list, default=list(PROMPT_TYPES),
                        help='ig_keypoint prompt types drawn from (point,box,scribble,mask)')
    parser.add_argument('--id-prefix', default='cocokpt', help='prefix of the record ids')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> ConversionSummary:
    args = parse_args(argv)
    meta = keypoint_meta(load_json(args.ann_file))
    summary = ConversionSummary()
    records = convert_coco_keypoints(
        args.ann_file, summary, tasks=args.tasks, seed=args.seed, prompt_types=args.prompt_types,
        id_prefix=args.id_prefix, image_prefix=args.image_prefix or '',
        progress=progress_bar('images'))
    return finish(args.out, records, summary, meta)


if __name__ == '__main__':
    main()
