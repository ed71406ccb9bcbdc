"""Write the synthetic VT-Instruct set: images, depth maps, JSONL records, meta and manifest.

Layout under ``out_dir``: ``{split}.jsonl``, ``images/{split}/NNNNNN.png``,
``depth/{split}/NNNNNN.png`` (uint16, metres x 1000), ``meta.json`` and ``manifest.json``.
Record ``i`` of a split is drawn from its own seed ``(seed, split, i)``, so a split is
byte-identical for equal arguments and train / val never share a seed.
"""
import hashlib
import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Dict, Mapping, Optional, Sequence

import numpy as np
from PIL import Image

from ..renderers import ImageInfo
from ..tasks import TASKS
from .records import KEYPOINT_TASKS, build_scene_record, scene_fits
from .scene import sample_scene
from .shapes import KEYPOINT_NAMES, KEYPOINT_SIGMAS, SKELETON, all_categories

SPLITS = {'train': 0, 'val': 1}
# REC Acc@0.5 and RES cIoU are the headline metrics: their tasks get four times the weight.
DEFAULT_TASK_WEIGHTS = {name: 1.0 for name in TASKS}
DEFAULT_TASK_WEIGHTS.update(rec=4.0, res=4.0)
_SCENE_ATTEMPTS = 50
FORMAT_VERSION = 2
# REC is scored as in RefCOCO (one referent per expression): held-out REC records never use a
# group expression; training keeps them (the one-to-many paradigm).
SINGLE_REFERENT_SPLITS = {'val': ('rec', )}
# Several REC/RES rounds per record (``grounding_rounds``) in training only: held-out records
# keep the benchmark protocol, one expression each.
ROUNDS_SPLITS = ('train', )
PNG_COMPRESS_LEVEL = 1  # zlib level: fast writes; PNG stays lossless and deterministic
# the packages whose code decides the records: the scenes, the task renderers, the TRP strings
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]
CODE_PACKAGES = ('datasets/synthetic', 'datasets/renderers', 'trp')


def code_fingerprint(root: Path = _PACKAGE_ROOT, packages: Sequence[str] = CODE_PACKAGES) -> str:
    """SHA-1 of the ``.py`` files under ``root / package`` for each package (paths and bytes,
    in sorted order): a changed template, renderer or scene rule changes it, so a cached set is
    regenerated instead of silently reused."""
    digest = hashlib.sha1()
    for package in packages:
        for path in sorted((Path(root) / package).rglob('*.py')):
            digest.update(path.relative_to(root).as_posix().encode() + b'\0')
            digest.update(path.read_bytes() + b'\0')
    return digest.hexdigest()


def task_schedule(num: int, weights: Mapping[str, float], rng: random.Random) -> list:
    """``num`` task names in ``weights`` proportions (largest remainder, every task of positive
    weight at least once when ``num`` allows), shuffled by ``rng``."""
    names = [n for n in weights if weights[n] > 0]
    total = float(sum(weights[n] for n in names))
    floor_share = 1 if num >= len(names) else 0
    counts = {n: max(floor_share, int(num * weights[n] / total)) for n in names}
    remainders = sorted(names, key=lambda n: (num * weights[n] / total) % 1, reverse=True)
    index = 0
    while sum(counts.values()) < num:
        counts[remainders[index % len(names)]] += 1
        index += 1
    while sum(counts.values()) > num:
        largest = max(names, key=lambda n: counts[n])
        counts[largest] -= 1
    schedule = [n for n in names for _ in range(counts[n])]
    rng.shuffle(schedule)
    return schedule


def _record_rngs(seed: int, split: str, index: int):
    sequence = np.random.SeedSequence([seed, SPLITS[split], index])
    return random.Random(int(sequence.generate_state(1)[0])), np.random.default_rng(sequence)


def _write_png(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format='PNG', compress_level=PNG_COMPRESS_LEVEL)


def _generate_split(out_dir: Path, split: str, num: int, seed: int, image_size: int,
                    weights: Mapping[str, float], rounds: int, progress: Callable) -> Counter:
    schedule_seed = np.random.SeedSequence([seed, SPLITS[split]]).generate_state(1)[0]
    schedule = task_schedule(num, weights, random.Random(int(schedule_seed)))
    counts: Counter = Counter()
    lines = []
    for index, task in enumerate(progress(schedule, desc=split)):
        rng, nprng = _record_rngs(seed, split, index)
        single = task in SINGLE_REFERENT_SPLITS.get(split, ())
        for _ in range(_SCENE_ATTEMPTS):
            scene = sample_scene(rng, nprng, image_size, need_house=task in KEYPOINT_TASKS)
            if scene_fits(task, scene, single):
                break
        else:
            raise RuntimeError(f'generate: no {task} scene found for {split} record {index}')
        name = f'{index:06d}.png'
        image_path, depth_path = f'images/{split}/{name}', f'depth/{split}/{name}'
        _write_png(scene.image, out_dir / image_path)
        _write_png(scene.depth_mm, out_dir / depth_path)
        image = ImageInfo(f'synthetic_{split}_{index:06d}', image_path, image_size, image_size)
        record = build_scene_record(task, scene, image, depth_path, rng,
                                    record_id=f'{image.id}_{task}', single_referent=single,
                                    rounds=rounds if split in ROUNDS_SPLITS else 1)
        lines.append(json.dumps(record))
        counts[task] += 1
    (out_dir / f'{split}.jsonl').write_text(''.join(line + '\n' for line in lines))
    return counts


def _parse_weights(tasks: Optional[Sequence[str]],
                   task_weights: Optional[Mapping[str, float]]) -> Dict[str, float]:
    names = list(tasks) if tasks else list(TASKS)
    unknown = [n for n in list(names) + list(task_weights or {}) if n not in TASKS]
    if unknown:
        raise ValueError(f'generate: unknown task(s) {unknown}; known: {", ".join(TASKS)}')
    weights = {n: float((task_weights or {}).get(n, DEFAULT_TASK_WEIGHTS[n])) for n in names}
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError(f'generate: task weights must be >= 0 with a positive sum: {weights}')
    return weights


def _no_progress(iterable, desc=None):
    return iterable


def generate(out_dir,
             num_train: int = 3000,
             num_val: int = 300,
             seed: int = 0,
             image_size: int = 128,
             tasks: Optional[Sequence[str]] = None,
             task_weights: Optional[Mapping[str, float]] = None,
             grounding_rounds: int = 1,
             progress: Callable = _no_progress) -> Dict:
    """Generate the synthetic set under ``out_dir`` (skipped when its manifest matches: same
    arguments, format version and generator code, :func:`code_fingerprint`).

    Args:
        out_dir: output folder.
        num_train, num_val: records (one scene each) per split.
        seed: base seed; equal arguments give byte-identical files.
        image_size: canvas side in pixels.
        tasks: task names to draw (default: every task of ``TASKS``).
        task_weights: relative frequency per task (default ``DEFAULT_TASK_WEIGHTS``).
        grounding_rounds: distinct expressions asked per REC/RES training record, one round
            each: the image and its prompt are encoded once for several supervised queries
            (docs/experiments.md); 1 asks one (a quarter of the records add a
            follow-up). Held-out records always ask one.
        progress: wraps each split's iterable, e.g. ``tqdm.tqdm`` (called with ``desc=split``).

    Returns:
        Summary: ``{'arguments': ..., 'records': {split: {task: n}}, 'seconds': float,
        'skipped': bool}``.
    """
    out_dir = Path(out_dir)
    weights = _parse_weights(tasks, task_weights)
    if grounding_rounds < 1:
        raise ValueError(f'generate: grounding_rounds={grounding_rounds} must be >= 1')
    arguments = {'format_version': FORMAT_VERSION, 'code': code_fingerprint(),
                 'num_train': int(num_train), 'num_val': int(num_val), 'seed': int(seed),
                 'image_size': int(image_size), 'task_weights': weights,
                 'grounding_rounds': int(grounding_rounds)}
    manifest_path = out_dir / 'manifest.json'
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get('arguments') == arguments and all(
                (out_dir / f'{split}.jsonl').is_file() for split in SPLITS):
            return dict(manifest, skipped=True)
    start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    records = {}
    for split, num in (('train', num_train), ('val', num_val)):
        counts = _generate_split(out_dir, split, num, seed, image_size, weights,
                                 grounding_rounds, progress)
        records[split] = {task: counts[task] for task in weights if counts[task]}
    meta = {'classes': all_categories(), 'keypoint_names': list(KEYPOINT_NAMES),
            'keypoint_sigmas': list(KEYPOINT_SIGMAS), 'skeleton': [list(e) for e in SKELETON]}
    (out_dir / 'meta.json').write_text(json.dumps(meta, indent=2) + '\n')
    summary = {'arguments': arguments, 'records': records,
               'seconds': round(time.perf_counter() - start, 3)}
    manifest_path.write_text(json.dumps(summary, indent=2) + '\n')
    return dict(summary, skipped=False)
