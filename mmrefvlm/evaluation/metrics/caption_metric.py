"""Captioning and referring expression generation: BLEU-4, METEOR, CIDEr with all references."""
from typing import Any, Dict, List, Sequence

from mmrefvlm.registry import METRICS
from .caption_scorers import CAPTION_SCORES, score_captions, shared_meteor
from .sample_views import sample_prediction_text, sample_references
from .task_metric import TaskMetric, TaskNames


@METRICS.register_module()
class CaptionMetric(TaskMetric):
    """pycocoevalcap caption scores (DESIGN §7) for caption and REG.

    Protocol: the prediction is ``strip_tags(pred_text)``; it is scored against **all** the
    sample's references (metainfo ``references``, falling back to ``strip_tags(gt_answer)``),
    after PTB tokenisation. Corpus-level BLEU-4, METEOR (1.5) and CIDEr (CIDEr-D as in
    pycocoevalcap, IDF from the split's references), one entry per sample; an empty generation
    is scored as an empty sentence. SPICE is off. Nothing is written to disk by this metric.

    Reports ``{task}/BLEU-4``, ``{task}/METEOR``, ``{task}/CIDEr`` (pycocoevalcap's scale).

    Args:
        scores: which of ``('BLEU-4', 'METEOR', 'CIDEr')`` to compute.
        tasks: task names, default ``('caption', 'reg')``.
    """
    default_tasks = ('caption', 'reg')

    def __init__(self,
                 scores: Sequence[str] = CAPTION_SCORES,
                 tasks: TaskNames = None,
                 **kwargs: Any) -> None:
        super().__init__(tasks=tasks, **kwargs)
        self.scores = tuple(scores)
        if 'METEOR' in self.scores:
            shared_meteor()  # start java now: its tables load while the model predicts

    def process_sample(self, sample: Dict[str, Any]) -> Dict[str, Any]:
        return dict(prediction=sample_prediction_text(sample),
                    references=sample_references(sample, 'CaptionMetric'))

    def compute_task(self, task: str, results: List[Dict[str, Any]]) -> Dict[str, float]:
        return score_captions([r['prediction'] for r in results],
                              [r['references'] for r in results], self.scores)
