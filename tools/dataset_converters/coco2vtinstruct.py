"""Convert COCO instances (``instances_*.json``) to ovd / ovs / fovd / fovs VT-Instruct records.

Example::

    python tools/dataset_converters/coco2vtinstruct.py \
        data/coco/annotations/instances_val2017.json --out data/vtinstruct/coco_ovd_val.jsonl \
        --image-prefix val2017/ --tasks ovd,ovs --all-classes

Writes ``meta.json`` (the class list, in category-id order) beside the output.
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
    parser.add_argument('ann_file', help='COCO instances_*.json')
    parser.add_argument('--tasks', type=comma_list, default=None,
                        help='comma-separated subset of ovd,ovs,fovd,fovs (default: all)')
    parser.add_argument('--num-negatives', type=int, default=3,
                        help='absent classes offered in ovd/ovs prompts')
    parser.add_argument('--all-classes', action='store_true',
                        help='offer every class in ovd/ovs prompts (evaluation protocol)')
    parser.add_argument('--id-prefix', default='coco', help='prefix of the record ids')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> 'ConversionSummary':
    args = parse_args(argv)
    from mmrefvlm.datasets.converters import ConversionSummary, coco_classes, convert_coco_detection
    from mmrefvlm.datasets.converters.cli import finish, progress_bar
    from mmrefvlm.datasets.converters.coco_annotations import load_json
    summary = ConversionSummary()
    records = convert_coco_detection(
        args.ann_file, summary, **given(tasks=args.tasks), seed=args.seed,
        num_negatives=args.num_negatives, all_classes=args.all_classes, id_prefix=args.id_prefix,
        image_prefix=args.image_prefix or '', progress=progress_bar('images'))
    meta = {'classes': coco_classes(load_json(args.ann_file))}
    return finish(args.out, records, summary, meta)


if __name__ == '__main__':
    main()
