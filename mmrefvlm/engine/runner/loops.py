"""``REFVLMTestLoop``: MMEngine's test loop with a progress bar and skipped samples reported."""
import logging
import sys
from typing import Callable, List, NamedTuple, Optional, Sequence

from mmengine.dist import all_gather_object, is_main_process
from mmengine.logging import print_log
from mmengine.runner import TestLoop
from mmengine.runner.loops import _parse_losses
from tqdm import tqdm

from mmrefvlm.datasets.bad_samples import SkippedSample
from mmrefvlm.registry import LOOPS

# How many skipped samples the end-of-test warning quotes in full.
SKIPPED_QUOTED = 20


class SplitBatch(NamedTuple):
    """A collated batch with the dataset's skipped samples set aside.

    Args:
        batch: the collated kept samples, ``None`` when every sample was skipped.
        size: the number of kept samples.
        skipped: the message of every skipped sample.
    """
    batch: Optional[object]
    size: int
    skipped: List[str]


class SkippedSampleCollate:
    """Wraps a collate function: :class:`SkippedSample` entries never reach it or the model.

    Args:
        collate_fn: the data loader's collate function.
    """

    def __init__(self, collate_fn: Callable) -> None:
        self.collate_fn = collate_fn

    def __call__(self, samples: Sequence) -> SplitBatch:
        kept = [s for s in samples if not isinstance(s, SkippedSample)]
        skipped = [s.message for s in samples if isinstance(s, SkippedSample)]
        return SplitBatch(self.collate_fn(kept) if kept else None, len(kept), skipped)


@LOOPS.register_module()
class REFVLMTestLoop(TestLoop):
    """MMEngine's ``TestLoop`` that shows its progress and reports the samples it skipped.

    The main process draws a progress bar (samples of its rank, samples/s, ETA) on stderr.
    Samples the dataset skipped (:func:`mmrefvlm.datasets.bad_samples.skip_or_raise`: a missing
    image, a conversation longer than ``max_length``) are left out of the batch; at the end one
    warning counts them over all ranks and quotes the first few, and the metrics gain
    ``skipped_samples``. The metrics are computed over the samples that were evaluated.

    Args:
        runner, dataloader, evaluator, fp16: as in :class:`mmengine.runner.TestLoop`.
        progress: draw the progress bar.
    """

    def __init__(self, runner, dataloader, evaluator, fp16: bool = False,
                 progress: bool = True) -> None:
        super().__init__(runner, dataloader, evaluator, fp16)
        self.dataloader.collate_fn = SkippedSampleCollate(self.dataloader.collate_fn)
        self.progress = progress

    def run(self) -> dict:
        """Run the test epoch; return the metrics (with ``skipped_samples``)."""
        self.runner.call_hook('before_test')
        self.runner.call_hook('before_test_epoch')
        self.runner.model.eval()
        self.test_loss.clear()
        skipped: List[str] = []
        sampler = self.dataloader.sampler
        total = len(sampler) if hasattr(sampler, '__len__') else None
        with tqdm(total=total, unit='sample', desc='test', file=sys.stderr, dynamic_ncols=True,
                  disable=not (self.progress and is_main_process())) as bar:
            for idx, split in enumerate(self.dataloader):
                skipped.extend(split.skipped)
                if split.batch is not None:
                    self.run_iter(idx, split.batch)
                bar.update(split.size + len(split.skipped))
        metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
        if self.test_loss:
            metrics.update(_parse_losses(self.test_loss, 'test'))
        metrics['skipped_samples'] = self._report_skipped(skipped)
        self.runner.call_hook('after_test_epoch', metrics=metrics)
        self.runner.call_hook('after_test')
        return metrics

    @staticmethod
    def _report_skipped(skipped: List[str]) -> int:
        """Warn once about the samples every rank skipped; return their number."""
        everyone = [message for messages in all_gather_object(skipped) for message in messages]
        if everyone:
            more = len(everyone) - SKIPPED_QUOTED
            print_log(f'REFVLMTestLoop: {len(everyone)} samples were skipped and are not in the '
                      'metrics:\n' + '\n'.join(everyone[:SKIPPED_QUOTED]) +
                      (f'\n... and {more} more (see the warnings above)' if more > 0 else ''),
                      logger='current', level=logging.WARNING)
        return len(everyone)
