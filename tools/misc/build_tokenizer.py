"""Train the small byte-level BPE tokenizer of a generated data set (``type='generated'``).

    python tools/misc/build_tokenizer.py --data data/synthetic [--vocab-size 2048]
        [--system TEXT ...] [--force]

The corpus is every human/gpt text of ``DATA/train.jsonl`` plus every string the pipeline adds
to them: the system prompts (the default one and those given with ``--system``: pass the
config's ``system`` when it differs), the task command of every task, the VD-CoT blocks and the rendered
conversation of the first record of each task. The tokenizer is written to ``DATA/tokenizer/``
with ``inputs.sha256``, the hash of those inputs; a second run with the same inputs does nothing.
"""
import argparse
import hashlib
import json
import os.path as osp
import sys
from typing import Iterator, List, Optional, Sequence, Tuple

HASH_FILE = 'inputs.sha256'


def read_records(jsonl: str) -> Iterator[Tuple[int, dict]]:
    """``(line number, record)`` of every non-empty line.

    Raises:
        ValueError: naming the file and line of a line that is not UTF-8 or not JSON.
    """
    from mmrefvlm.datasets.record import decode_line
    with open(jsonl, 'rb') as lines:
        for number, raw in enumerate(lines, 1):
            try:
                line = decode_line(raw)
                if line.strip():
                    yield number, json.loads(line)
            except ValueError as error:  # RecordDecodeError, json.JSONDecodeError
                raise ValueError(f'{jsonl} line {number}: {error}') from None


def system_texts(systems: Sequence[str] = ()) -> List[str]:
    """The strings the pipeline adds around the records' own texts."""
    from mmrefvlm.datasets.tasks import TASKS
    from mmrefvlm.datasets.transforms.conversation import DEFAULT_SYSTEM
    from mmrefvlm.trp import compose_cot, compose_task_command
    texts = [DEFAULT_SYSTEM, *systems, compose_cot([])]
    texts += [compose_task_command(s.description, s.elements, s.unit) for s in TASKS.values()]
    return texts


def corpus(jsonl: str, systems: Sequence[str] = ()) -> List[str]:
    """Every conversation text of ``jsonl`` plus the rendered text of one record per task
    (once per system prompt)."""
    from mmrefvlm.datasets.tasks import TASKS
    from mmrefvlm.datasets.transforms.conversation import DEFAULT_SYSTEM, render_conversation
    texts = system_texts(systems)
    rendered_tasks = set()
    for number, record in read_records(jsonl):
        texts += [turn['value'] for turn in record.get('conversations', [])]
        if record.get('task') in TASKS and record['task'] not in rendered_tasks:
            for system in (DEFAULT_SYSTEM, *systems):
                try:
                    rendered = render_conversation(record['task'], record['conversations'],
                                                   system)
                except (KeyError, ValueError) as error:
                    raise ValueError(f'{jsonl} line {number}: {error}') from None
                texts.append(rendered.text)
            rendered_tasks.add(record['task'])
    return texts


def inputs_hash(jsonl: str, vocab_size: int, systems: Sequence[str] = ()) -> str:
    """Hash of the data file, the vocabulary size and the pipeline's own strings."""
    digest = hashlib.sha256()
    with open(jsonl, 'rb') as data:
        for block in iter(lambda: data.read(1 << 20), b''):
            digest.update(block)
    digest.update(f'vocab_size={vocab_size}'.encode())
    for text in system_texts(systems):
        digest.update(text.encode())
    return digest.hexdigest()


def build(data_dir: str, vocab_size: int = 2048, force: bool = False,
          systems: Sequence[str] = ()) -> bool:
    """Write ``data_dir/tokenizer``; return ``False`` when it was up to date and kept."""
    from mmrefvlm.tokenization import train_tokenizer
    jsonl = osp.join(data_dir, 'train.jsonl')
    if not osp.isfile(jsonl):
        raise FileNotFoundError(f'build_tokenizer: {jsonl} does not exist')
    out_dir = osp.join(data_dir, 'tokenizer')
    hash_file = osp.join(out_dir, HASH_FILE)
    want = inputs_hash(jsonl, vocab_size, systems)
    if not force and osp.isfile(hash_file) and osp.isfile(osp.join(out_dir, 'tokenizer.json')):
        with open(hash_file, encoding='utf-8') as f:
            if f.read().strip() == want:
                return False
    train_tokenizer(corpus(jsonl, systems), out_dir, vocab_size=vocab_size)
    with open(hash_file, 'w', encoding='utf-8') as f:
        f.write(want + '\n')
    return True


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data', required=True, help='data set directory with train.jsonl')
    parser.add_argument('--vocab-size', type=int, default=2048)
    parser.add_argument('--system', action='append', default=[],
                        help='a system prompt the configs use (repeatable)')
    parser.add_argument('--force', action='store_true', help='retrain even when up to date')
    args = parser.parse_args(argv)
    built = build(args.data, args.vocab_size, args.force, args.system)
    out_dir = osp.join(args.data, 'tokenizer')
    print(f'build_tokenizer: {"wrote" if built else "up to date:"} {out_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
