"""The arguments every converter CLI under ``tools/dataset_converters/`` shares.

Only the standard library is imported here, so a converter's ``--help`` answers before the
package (and torch) is imported; the converters import ``mmrefvlm`` in ``main``.
"""
import argparse
from typing import List


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


def given(**options) -> dict:
    """The options the user gave (not ``None``): the converter's own defaults fill the rest."""
    return {name: value for name, value in options.items() if value is not None}
