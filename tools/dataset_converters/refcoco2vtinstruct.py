"""Convert RefCOCO / RefCOCO+ / RefCOCOg to rec / res / reg VT-Instruct records.

Example::

    python tools/dataset_converters/refcoco2vtinstruct.py data/refcoco/refs\(unc\).p \
        data/refcoco/instances.json --split val --name refcoco \
        --tasks rec,res --image-prefix train2014/ --out data/refcoco/refcoco-val.jsonl

rec / res: one record per sentence; reg: one per sentence on train, one per ref otherwise (all
sentences in ``references``). The refs file is a pickle: only convert files you trust.
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
    parser.add_argument('refs_file', help='refs(unc).p / refs(umd).p / refs(google).p')
    parser.add_argument('instances_file', help="the dataset's instances.json")
    parser.add_argument('--split', default=None,
                        help='keep the refs of this split: train, val, test, testA or testB '
                        '(default: all)')
    parser.add_argument('--tasks', type=comma_list, default=None,
                        help='comma-separated subset of rec,res,reg (default: all)')
    parser.add_argument('--prompt-types', type=comma_list, default=None,
                        help='reg prompt types drawn from, of point,box,scribble,mask '
                        '(default: box)')
    parser.add_argument('--name', default='refcoco',
                        help='dataset name used in the record ids (refcoco, refcoco+, refcocog)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> 'ConversionSummary':
    args = parse_args(argv)
    from mmrefvlm.datasets.converters import ConversionSummary, convert_refcoco
    from mmrefvlm.datasets.converters.cli import finish, progress_bar
    summary = ConversionSummary()
    records = convert_refcoco(
        args.refs_file, args.instances_file, summary, split=args.split, seed=args.seed,
        **given(tasks=args.tasks, prompt_types=args.prompt_types), dataset_name=args.name,
        image_prefix=args.image_prefix or '', progress=progress_bar('refs'))
    return finish(args.out, records, summary)


if __name__ == '__main__':
    main()
