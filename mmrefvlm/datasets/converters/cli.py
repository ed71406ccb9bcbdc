"""What every converter CLI under ``tools/dataset_converters/`` shares: the common arguments
(``--out``, ``--seed``, ``--image-prefix``), the progress bar and the final write + summary."""
import argparse
from functools import partial
from typing import Callable, Dict, Iterable, List, Optional

from tqdm import tqdm

from .output import ConversionSummary, write_jsonl, write_meta


def converter_parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser with ``--out`` (required), ``--seed`` and ``--image-prefix``."""
    parser = argparse.ArgumentParser(description=doc.strip().split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', required=True, help='output VT-Instruct JSONL file')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the template / prompt choices (deterministic)')
    parser.add_argument('--image-prefix', default=None,
                        help='prepended to the source image file names in the records')
    return parser


def comma_list(text: str) -> List[str]:
    """``'ovd,ovs'`` → ``['ovd', 'ovs']`` (for ``type=`` of list arguments)."""
    return [item.strip() for item in text.split(',') if item.strip()]


def progress_bar(desc: str) -> Callable[[Iterable], Iterable]:
    """A ``tqdm`` wrapper for a converter's main loop."""
    return partial(tqdm, desc=desc, dynamic_ncols=True)


def finish(out: str, records: Iterable[Dict], summary: ConversionSummary,
           meta: Optional[Dict] = None) -> ConversionSummary:
    """Write ``records`` (and ``meta.json`` when ``meta`` is given), print the summary."""
    write_jsonl(out, records, summary, meta)
    if meta is not None:
        write_meta(out, meta)
    print(summary.format(out))
    return summary
