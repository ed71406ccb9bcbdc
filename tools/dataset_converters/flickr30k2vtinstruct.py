"""Convert Flickr30k-Entities (Sentences/*.txt + Annotations/*.xml) to gcg_box records.

Example::

    python tools/dataset_converters/flickr30k2vtinstruct.py data/flickr30k_entities \
        --split-file data/flickr30k_entities/val.txt --out data/vtinstruct/flickr30k_val.jsonl

One record per sentence; a phrase is grounded to every box of its entity.
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
    parser.add_argument('root', help='folder with Sentences/ and Annotations/')
    parser.add_argument('--split-file', default=None,
                        help='train.txt / val.txt / test.txt of image ids (default: all)')
    parser.add_argument('--id-prefix', default='flickr30k', help='prefix of the record ids')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> 'ConversionSummary':
    args = parse_args(argv)
    from mmrefvlm.datasets.converters import ConversionSummary, convert_flickr30k
    from mmrefvlm.datasets.converters.cli import finish, progress_bar
    summary = ConversionSummary()
    prefix = 'flickr30k-images/' if args.image_prefix is None else args.image_prefix
    records = convert_flickr30k(args.root, summary, split_file=args.split_file, seed=args.seed,
                                id_prefix=args.id_prefix, image_prefix=prefix,
                                progress=progress_bar('images'))
    return finish(args.out, records, summary)


if __name__ == '__main__':
    main()
