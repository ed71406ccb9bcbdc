"""Convert LLaVA-Instruct conversations (llava_instruct_150k.json) to multi-turn vqa records.

Example::

    python tools/dataset_converters/llava2vtinstruct.py data/llava/llava_instruct_150k.json \
        --sizes-from data/coco/annotations/instances_train2017.json \
        --out data/vtinstruct/llava_instruct.jsonl --image-prefix train2017/

Image sizes come from ``--sizes-from`` COCO files or from the images under ``--image-root``.
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
    parser.add_argument('ann_file', help='LLaVA-Instruct JSON')
    parser.add_argument('--sizes-from', nargs='*', default=[],
                        help='COCO json files whose images give the sizes')
    parser.add_argument('--image-root', default=None,
                        help='image folder, to read sizes from the image headers')
    parser.add_argument('--id-prefix', default='llava', help='prefix of the record ids')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> 'ConversionSummary':
    args = parse_args(argv)
    from mmrefvlm.datasets.converters import ConversionSummary, ImageSizes, convert_llava
    from mmrefvlm.datasets.converters.cli import finish, progress_bar
    summary = ConversionSummary()
    sizes = ImageSizes(args.sizes_from, args.image_root)
    records = convert_llava(args.ann_file, summary, sizes, id_prefix=args.id_prefix,
                            image_prefix=args.image_prefix or '',
                            progress=progress_bar('conversations'))
    return finish(args.out, records, summary)


if __name__ == '__main__':
    main()
