"""Convert COCO-Interactive (PSALM's coco_interactive_*_psalm.json) to ig_box / ig_mask records.

Example::

    python tools/dataset_converters/coco_interactive2vtinstruct.py \
        data/coco/coco_interactive_val_psalm.json data/coco/annotations/instances_val2017.json \
        --out data/vtinstruct/coco_interactive_val.jsonl --image-prefix val2017/ --prompt-types box

One record per annotation, task and prompt type (point, box, scribble, mask).
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
    parser.add_argument('ann_file', help="PSALM's coco_interactive_*_psalm.json")
    parser.add_argument('categories_file', help='a COCO json naming the categories')
    parser.add_argument('--tasks', type=comma_list, default=None,
                        help='comma-separated subset of ig_box,ig_mask (default: all)')
    parser.add_argument('--prompt-types', type=comma_list, default=None,
                        help='prompt masks to convert, of point,box,scribble,mask (default: all)')
    parser.add_argument('--id-prefix', default='coco_interactive',
                        help='prefix of the record ids')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> 'ConversionSummary':
    args = parse_args(argv)
    from mmrefvlm.datasets.converters import ConversionSummary, convert_coco_interactive
    from mmrefvlm.datasets.converters.cli import finish, progress_bar
    summary = ConversionSummary()
    records = convert_coco_interactive(
        args.ann_file, args.categories_file, summary, seed=args.seed,
        **given(tasks=args.tasks, prompt_types=args.prompt_types), id_prefix=args.id_prefix,
        image_prefix=args.image_prefix or '', progress=progress_bar('images'))
    return finish(args.out, records, summary)


if __name__ == '__main__':
    main()
