"""POPE object-hallucination scores from yes/no answers."""
from typing import Any, Dict, List

import numpy as np

from mmrefvlm.registry import METRICS
from .sample_views import sample_prediction_text, sample_references
from .task_metric import TaskMetric, TaskNames
from .vqa_metric import normalize_vqa_answer


def parse_yes_no(answer: str) -> str:
    """``'yes'`` if the normalised answer starts with the word yes, else ``'no'``.

    An answer that starts with neither word (``'maybe'``, ``''``) counts as ``'no'``.
    """
    words = normalize_vqa_answer(answer).split()
    return 'yes' if words and words[0] == 'yes' else 'no'


@METRICS.register_module()
class POPEMetric(TaskMetric):
    """POPE object-hallucination scores (DESIGN §7).

    Protocol: prediction (``strip_tags(pred_text)``) and reference (``gt_answer``) are parsed
    with :func:`parse_yes_no` — yes when the normalised answer's first word is ``yes``,
    otherwise no (so an unparseable generation counts as "no"; ``unparsed_ratio`` says how
    often the generation started with neither word). Positive class = yes.

    Reports ``{task}/`` ``accuracy``, ``precision``, ``recall``, ``f1``, ``yes_ratio`` (fraction
    of yes predictions) and ``unparsed_ratio``, all in [0, 1]; precision is 0 when nothing was
    predicted yes and recall is 0 when no answer is yes.

    Args:
        tasks: task names, default ``('pope',)``.
    """
    default_tasks = ('pope', )

    def __init__(self, tasks: TaskNames = None, **kwargs: Any) -> None:
        super().__init__(tasks=tasks, **kwargs)

    def process_sample(self, sample: Dict[str, Any]) -> Dict[str, Any]:
        prediction = sample_prediction_text(sample)
        first_word = (normalize_vqa_answer(prediction).split() or [''])[0]
        reference = sample_references(sample, 'POPEMetric')[0]
        return dict(pred_yes=parse_yes_no(prediction) == 'yes',
                    gt_yes=parse_yes_no(reference) == 'yes',
                    parsed=first_word in ('yes', 'no'))

    def compute_task(self, task: str, results: List[Dict[str, Any]]) -> Dict[str, float]:
        pred = np.array([r['pred_yes'] for r in results])
        gt = np.array([r['gt_yes'] for r in results])
        tp = float(np.sum(pred & gt))
        precision = tp / pred.sum() if pred.sum() else 0.0
        recall = tp / gt.sum() if gt.sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return dict(accuracy=float(np.mean(pred == gt)), precision=float(precision),
                    recall=float(recall), f1=float(f1), yes_ratio=float(pred.mean()),
                    unparsed_ratio=1.0 - float(np.mean([r['parsed'] for r in results])))
