"""Convert POPE question files (JSON lines ``{question_id, image, text, label}``) to pope records.

Example::

    python tools/dataset_converters/pope2vtinstruct.py data/pope/coco_pope_random.json \
        --sizes-from data/coco/annotations/instances_val2014.json \
        --out data/vtinstruct/pope_random.jsonl --image-prefix val2014/ --id-prefix pope_random
"""
import os.path as osp
import sys
from typing import TYPE_CHECKING, List, Optional

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from converter_args import converter_parser  # noqa: E402

if TYPE_CHECKING:
    from mmrefvlm.datasets.converters import ConversionSummary


def parse_args(argv: Optional[List[str]] = None):
    parser = converter_parser(__doc__)
    parser.add_argument('pope_file', help='POPE question file (JSON lines)')
    parser.add_argument('--sizes-from', nargs='*', default=[],
                        help='COCO json files whose images give the sizes')
    parser.add_argument('--image-root', default=None,
                        help='image folder, to read sizes from the image headers')
    parser.add_argument('--id-prefix', default='pope', help='prefix of the record ids')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> 'ConversionSummary':
    args = parse_args(argv)
    from mmrefvlm.datasets.converters import ConversionSummary, ImageSizes, convert_pope
    from mmrefvlm.datasets.converters.cli import finish, progress_bar
    summary = ConversionSummary()
    sizes = ImageSizes(args.sizes_from, args.image_root)
    records = convert_pope(args.pope_file, summary, sizes, seed=args.seed,
                           id_prefix=args.id_prefix, image_prefix=args.image_prefix or '',
                           progress=progress_bar('questions'))
    return finish(args.out, records, summary)


if __name__ == '__main__':
    main()
