"""What every converter CLI under ``tools/dataset_converters/`` shares once its arguments are
parsed: the progress bar and the final write + summary (the arguments themselves are in
``tools/dataset_converters/converter_args.py``, which imports nothing heavy)."""
from functools import partial
from typing import Callable, Dict, Iterable, Optional

from tqdm import tqdm

from .output import ConversionSummary, write_jsonl, write_meta


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
