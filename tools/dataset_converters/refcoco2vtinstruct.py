"""Convert RefCOCO / RefCOCO+ / RefCOCOg to rec / res / reg VT-Instruct records.

Example::

    python tools/dataset_converters/refcoco2vtinstruct.py data/refcoco/refs\(unc\).p \
        data/refcoco/instances.json --split val --name refcoco \
        --tasks rec,res --image-prefix train2014/ --out data/refcoco/refcoco-val.jsonl

rec / res: one record per sentence; reg: one per sentence on train, one per ref otherwise (all
sentences in ``references``). The refs file is a pickle: only convert files you trust.
"""
from typing import List, Optional

from mmrefvlm.datasets.converters import REFERRING_TASKS, ConversionSummary, convert_refcoco
from mmrefvlm.datasets.converters.cli import comma_list, converter_parser, finish, progress_bar
from mmrefvlm.datasets.converters.refcoco import SPLITS


def parse_args(argv: Optional[List[str]] = None):
    parser = converter_parser(__doc__)
    parser.add_argument('refs_file', help='refs(unc).p / refs(umd).p / refs(google).p')
    parser.add_argument('instances_file', help="the dataset's instances.json")
    parser.add_argument('--split', choices=SPLITS, default=None,
                        help='keep the refs of this split (default: all)')
    parser.add_argument('--tasks', type=comma_list, default=list(REFERRING_TASKS),
                        help='comma-separated subset of rec,res,reg')
    parser.add_argument('--prompt-types', type=comma_list, default=['box'],
                        help='reg prompt types drawn from (point,box,scribble,mask)')
    parser.add_argument('--name', default='refcoco',
                        help='dataset name used in the record ids (refcoco, refcoco+, refcocog)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> ConversionSummary:
    args = parse_args(argv)
    summary = ConversionSummary()
    records = convert_refcoco(
        args.refs_file, args.instances_file, summary, split=args.split, tasks=args.tasks,
        seed=args.seed, prompt_types=args.prompt_types, dataset_name=args.name,
        image_prefix=args.image_prefix or '', progress=progress_bar('refs'))
    return finish(args.out, records, summary)


if __name__ == '__main__':
    main()
