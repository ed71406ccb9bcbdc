"""Convert COCO-Interactive (PSALM's coco_interactive_*_psalm.json) to ig_box / ig_mask records.

Example::

    python tools/dataset_converters/coco_interactive2vtinstruct.py \
        data/coco/coco_interactive_val_psalm.json data/coco/annotations/instances_val2017.json \
        --out data/vtinstruct/coco_interactive_val.jsonl --image-prefix val2017/ --prompt-types box

One record per annotation, task and prompt type (point, box, scribble, mask).
"""
from typing import List, Optional

from mmrefvlm.datasets.converters import (INTERACTIVE_TASKS, ConversionSummary,
                                          convert_coco_interactive)
from mmrefvlm.datasets.converters.cli import comma_list, converter_parser, finish, progress_bar
from mmrefvlm.datasets.renderers import PROMPT_TYPES


def parse_args(argv: Optional[List[str]] = None):
    parser = converter_parser(__doc__)
    parser.add_argument('ann_file', help="PSALM's coco_interactive_*_psalm.json")
    parser.add_argument('categories_file', help='a COCO json naming the categories')
    parser.add_argument('--tasks', type=comma_list, default=list(INTERACTIVE_TASKS),
                        help='comma-separated subset of ig_box,ig_mask')
    parser.add_argument('--prompt-types', type=comma_list, default=list(PROMPT_TYPES),
                        help='prompt masks to convert (point,box,scribble,mask)')
    parser.add_argument('--id-prefix', default='coco_interactive',
                        help='prefix of the record ids')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> ConversionSummary:
    args = parse_args(argv)
    summary = ConversionSummary()
    records = convert_coco_interactive(
        args.ann_file, args.categories_file, summary, tasks=args.tasks,
        prompt_types=args.prompt_types, seed=args.seed, id_prefix=args.id_prefix,
        image_prefix=args.image_prefix or '', progress=progress_bar('images'))
    return finish(args.out, records, summary)


if __name__ == '__main__':
    main()
