"""Convert VQAv2 (questions + annotations JSON) to vqa records with all ten answers.

Example::

    python tools/dataset_converters/vqav22vtinstruct.py \
        data/vqav2/v2_OpenEnded_mscoco_val2014_questions.json \
        --annotations data/vqav2/v2_mscoco_val2014_annotations.json \
        --sizes-from data/coco/annotations/instances_val2014.json \
        --out data/vtinstruct/vqav2_val.jsonl

The answer is ``multiple_choice_answer``; the ten human answers go to ``references``.
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
    parser.add_argument('questions_file', help='v2_OpenEnded_mscoco_*_questions.json')
    parser.add_argument('--annotations', default=None,
                        help='v2_mscoco_*_annotations.json (absent for test splits)')
    parser.add_argument('--sizes-from', nargs='*', default=[],
                        help='COCO json files whose images give the sizes')
    parser.add_argument('--image-root', default=None,
                        help='image folder, to read sizes from the image headers')
    parser.add_argument('--id-prefix', default='vqav2', help='prefix of the record ids')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> 'ConversionSummary':
    args = parse_args(argv)
    from mmrefvlm.datasets.converters import ConversionSummary, ImageSizes, convert_vqav2
    from mmrefvlm.datasets.converters.cli import finish, progress_bar
    summary = ConversionSummary()
    sizes = ImageSizes(args.sizes_from, args.image_root)
    records = convert_vqav2(args.questions_file, summary, sizes,
                            annotations_file=args.annotations, seed=args.seed,
                            id_prefix=args.id_prefix, image_prefix=args.image_prefix,
                            progress=progress_bar('questions'))
    return finish(args.out, records, summary)


if __name__ == '__main__':
    main()
