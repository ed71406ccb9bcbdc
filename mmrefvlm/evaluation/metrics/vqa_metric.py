"""VQAv2 accuracy with the official answer normalisation."""
from typing import Any, Dict, List, Sequence

import numpy as np
from mmpretrain.evaluation.metrics.vqa import _process_digit_article, _process_punctuation

from mmrefvlm.registry import METRICS
from .sample_views import sample_prediction_text, sample_references
from .task_metric import TaskMetric, TaskNames


def normalize_vqa_answer(answer: str) -> str:
    """The official VQAv2 answer normalisation (mmpretrain's port of the GT-Vision-Lab script).

    Newlines and tabs become spaces; punctuation is removed or turned into a space; a period
    not inside a number is removed; the text is lower-cased; number words become digits
    (``'Ten'`` → ``'10'``); articles (a, an, the) are dropped; apostrophe-less contractions are
    restored (``'dont'`` → ``"don't"``).
    """
    answer = answer.replace('\n', ' ').replace('\t', ' ').strip()
    return _process_digit_article(_process_punctuation(answer))


def vqa_soft_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """Official VQAv2 accuracy of one prediction against the human answers.

    ``acc = mean over i of min(1, #{j != i : answers[j] == prediction} / 3)``: the
    ``min(#humans / 3, 1)`` rule averaged over the leave-one-out subsets (10 choose 9 for the
    10 VQAv2 answers). Both sides are normalised with :func:`normalize_vqa_answer`. With a
    single answer there is no subset, so the accuracy is the exact match (1 or 0).
    """
    prediction = normalize_vqa_answer(prediction)
    answers = [normalize_vqa_answer(a) for a in answers]
    if len(answers) == 1:
        return float(prediction == answers[0])
    matches = np.array([a == prediction for a in answers], dtype=np.float64)
    others = matches.sum() - matches
    return float(np.minimum(1.0, others / 3.0).mean())


@METRICS.register_module()
class VQAMetric(TaskMetric):
    """VQAv2 soft accuracy (DESIGN §7).

    Protocol: the prediction is ``strip_tags(pred_text)``; the human answers are the metainfo
    ``references`` (the 10 VQAv2 answers), falling back to ``[gt_answer]``; see
    :func:`vqa_soft_accuracy`. One deviation from the official script, stated: it normalises
    prediction and answers only when the 10 answers disagree; here both are always normalised
    (VQAv2's released answers are already normalised, so this only spares a free-form
    generation such as ``'Two.'`` from a formatting miss against a unanimous ``'2'``).

    Reports ``{task}/accuracy`` in [0, 1].

    Args:
        tasks: task names, default ``('vqa',)``.
    """
    default_tasks = ('vqa', )

    def __init__(self, tasks: TaskNames = None, **kwargs: Any) -> None:
        super().__init__(tasks=tasks, **kwargs)

    def process_sample(self, sample: Dict[str, Any]) -> Dict[str, Any]:
        return dict(accuracy=vqa_soft_accuracy(sample_prediction_text(sample),
                                               sample_references(sample, 'VQAMetric')))

    def compute_task(self, task: str, results: List[Dict[str, Any]]) -> Dict[str, float]:
        return dict(accuracy=float(np.mean([r['accuracy'] for r in results])))
