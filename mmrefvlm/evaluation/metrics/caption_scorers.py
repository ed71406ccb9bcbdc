"""pycocoevalcap BLEU-4, METEOR and CIDEr of generated sentences against all their references.

The official scorers are called directly: mmpretrain's ``COCOCaption`` needs an annotation file
and writes the predictions to a json file, which a metric must not do. Java runs the PTB
tokenizer (one call for predictions and references together) and METEOR; SPICE is not offered
(it needs a download). Scores are on pycocoevalcap's scale (CIDEr ≈ 0–10, the others 0–1).

METEOR's java process loads its paraphrase tables at start-up (seconds; scoring a corpus takes
milliseconds), so one process serves every metric and evaluation of a Python process
(:func:`shared_meteor`); a metric that reports METEOR starts it when it is built, so the tables
load while the model predicts.
"""
from typing import Dict, Optional, Sequence

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

CAPTION_SCORES = ('BLEU-4', 'METEOR', 'CIDEr')

_meteor: Optional[Meteor] = None


def shared_meteor() -> Meteor:
    """The process's METEOR scorer, started on first use (again if its java process died).
    Its scores do not depend on what it scored before; its own lock serialises callers."""
    global _meteor
    if _meteor is None or _meteor.meteor_p.poll() is not None:
        _meteor = Meteor()
    return _meteor


def tokenize(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> tuple:
    """PTB-tokenize predictions and references in one java call.

    Returns:
        ``(res, gts)``: dicts ``{index: [tokenized prediction]}`` and
        ``{index: [tokenized reference, ...]}`` as the pycocoevalcap scorers take them.
    """
    captions = {}
    for i, prediction in enumerate(predictions):
        captions[('res', i)] = [dict(caption=prediction)]
    for i, refs in enumerate(references):
        captions[('gts', i)] = [dict(caption=ref) for ref in refs]
    tokens = PTBTokenizer().tokenize(captions)
    # The tokenizer strips trailing empty lines, so trailing empty sentences come back missing.
    tokens = {key: (tokens.get(key, []) + [''] * len(value))[:len(value)]
              for key, value in captions.items()}
    res = {i: tokens[('res', i)] for i in range(len(predictions))}
    gts = {i: tokens[('gts', i)] for i in range(len(predictions))}
    return res, gts

def score_captions(predictions: Sequence[str],
                   references: Sequence[Sequence[str]],
                   scores: Sequence[str] = CAPTION_SCORES) -> Dict[str, float]:
    """Corpus-level caption scores of ``predictions[i]`` against all of ``references[i]``.

    Args:
        predictions: one plain-text sentence per sample (may be empty).
        references: at least one plain-text reference per sample.
        scores: a subset of ``CAPTION_SCORES``.

    Returns:
        ``{name: value}`` for each requested score.
    """
    unknown = set(scores) - set(CAPTION_SCORES)
    if unknown:
        raise ValueError(f'unknown caption scores {sorted(unknown)}; known: {CAPTION_SCORES}')
    if len(predictions) != len(references):
        raise ValueError(f'{len(predictions)} predictions but {len(references)} reference lists')
    for i, refs in enumerate(references):
        if not refs:
            raise ValueError(f'sample {i} has no reference sentence')
    res, gts = tokenize(predictions, references)
    out = {}
    if 'BLEU-4' in scores:
        bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
        out['BLEU-4'] = float(bleu[3])
    if 'METEOR' in scores:
        out['METEOR'] = float(shared_meteor().compute_score(gts, res)[0])
    if 'CIDEr' in scores:
        out['CIDEr'] = float(Cider().compute_score(gts, res)[0])
    return out
