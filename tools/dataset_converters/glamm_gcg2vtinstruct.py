"""Convert GLaMM GCG annotations (GranD-f style JSON) to gcg_mask records.

Example::

    python tools/dataset_converters/glamm_gcg2vtinstruct.py \
        data/GranDf/annotations/train/GranDf_HA_GCG_train.json \
        --out data/vtinstruct/grandf_gcg_train.jsonl --image-prefix GranDf_HA_images/train/

Each RLE of a phrase becomes one instance (one-to-many phrases).
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
    parser.add_argument('ann_file', help='GLaMM GCG JSON (list of file_name/caption/groundings)')
    parser.add_argument('--image-root', default=None,
                        help='image folder, to read the size of entries without masks')
    parser.add_argument('--id-prefix', default='glamm_gcg', help='prefix of the record ids')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> 'ConversionSummary':
    args = parse_args(argv)
    from mmrefvlm.datasets.converters import ConversionSummary, convert_glamm_gcg
    from mmrefvlm.datasets.converters.cli import finish, progress_bar
    summary = ConversionSummary()
    records = convert_glamm_gcg(args.ann_file, summary, seed=args.seed,
                                image_root=args.image_root, id_prefix=args.id_prefix,
                                image_prefix=args.image_prefix or '',
                                progress=progress_bar('entries'))
    return finish(args.out, records, summary)


if __name__ == '__main__':
    main()
