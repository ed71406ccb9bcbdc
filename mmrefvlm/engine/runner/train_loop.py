"""``REFVLMTrainLoop``: MMEngine's iteration-based training loop that resumes without replaying
the data loader and says what a resume does."""
import logging
from typing import List, Optional

from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop
from mmengine.runner.loops import _InfiniteDataloaderIterator

from mmrefvlm.registry import LOOPS

# Runtime-info keys of the runner's message hub, which every checkpoint saves and resume restores.
SAMPLER_STATE = 'train_sampler'
MAX_ITERS = 'train_max_iters'


class NothingToTrain(RuntimeError):
    """The resumed checkpoint is at or past ``max_iters``."""


@LOOPS.register_module()
class REFVLMTrainLoop(IterBasedTrainLoop):
    """MMEngine's ``IterBasedTrainLoop`` with a resumable data stream and a resume report.

    MMEngine resumes at iteration k by drawing k batches from the data loader and dropping them:
    every record is read, decoded and tokenized again (most of an hour at 60 000 iterations).
    Here the sampler's position (``state_dict()`` of
    :class:`~mmrefvlm.datasets.ResumableInfiniteSampler` and its subclasses) is saved with every
    checkpoint (in the runner's message hub) and a resumed run restarts the loader at it: the
    batches an uninterrupted run would have drawn, for one loader start whatever k. A sampler
    without ``state_dict`` falls back to MMEngine's replay (with a warning).

    On resume it logs the iteration it continues from and the iterations left; when
    ``max_iters`` differs from the checkpoint's run, both values and the learning-rate schedule
    the run follows (MMEngine restores the schedulers' state, their ends included). A checkpoint
    at or past ``max_iters`` stops the run with :class:`NothingToTrain`: nothing would train.

    Args:
        runner, dataloader, max_iters, val_begin, val_interval, dynamic_intervals: as in
            :class:`mmengine.runner.IterBasedTrainLoop`.
    """

    def run(self):
        """Train from the current (possibly resumed) iteration to ``max_iters``."""
        sampler = self._resumable_sampler()
        if self._iter > 0:
            self._report_resume()
        self.runner.call_hook('before_train')
        self.runner.call_hook('before_train_epoch')
        if self._iter > 0:
            self._restore_stream(sampler)
        hub = self.runner.message_hub
        hub.update_info(MAX_ITERS, self._max_iters)
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()
            data_batch = next(self.dataloader_iterator)
            if sampler is not None:  # saved by the checkpoints of this iteration
                sampler.advance(self.dataloader.batch_size * sampler.world_size)
                hub.update_info(SAMPLER_STATE, sampler.state_dict())
            self.run_iter(data_batch)
            self._decide_current_val_interval()
            if (self.runner.val_loop is not None and self._iter >= self.val_begin
                    and (self._iter % self.val_interval == 0 or self._iter == self._max_iters)):
                self.runner.val_loop.run()
        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model

    def _resumable_sampler(self) -> Optional[object]:
        sampler = getattr(self.dataloader, 'sampler', None)
        return sampler if hasattr(sampler, 'load_state_dict') else None

    def _restore_stream(self, sampler) -> None:
        """Restart the loader where the checkpoint's run stopped, or replay it (MMEngine)."""
        state = self.runner.message_hub.get_info(SAMPLER_STATE)
        if sampler is None or state is None:
            print_log(f'REFVLMTrainLoop: no saved data-stream position (sampler '
                      f'{type(self.dataloader.sampler).__name__}); drawing and dropping '
                      f'{self._iter} batches to skip the data already trained on',
                      logger='current', level=logging.WARNING)
            for _ in range(self._iter):
                next(self.dataloader_iterator)
            return
        sampler.load_state_dict(state)
        self.dataloader_iterator = _InfiniteDataloaderIterator(self.dataloader)
        print_log(f'REFVLMTrainLoop: the data stream continues at record {sampler.consumed} '
                  '(no replay)', logger='current')

    def _report_resume(self) -> None:
        """Log what the resumed run trains; stop when it would train nothing."""
        previous = self.runner.message_hub.get_info(MAX_ITERS)
        if self._iter >= self._max_iters:
            raise NothingToTrain(
                f'REFVLMTrainLoop: the resumed checkpoint is at iteration {self._iter} and '
                f'max_iters is {self._max_iters}: nothing would train. To train further, set '
                f'max_iters above {self._iter} (e.g. --cfg-options max_iters='
                f'{2 * self._iter}); to evaluate the checkpoint, run tools/test.py.')
        message = (f'REFVLMTrainLoop: resumed at iteration {self._iter}; training iterations '
                   f'{self._iter + 1}-{self._max_iters} ({self._max_iters - self._iter} left)')
        if previous is not None and previous != self._max_iters:
            message += (f'. max_iters changed from {previous} (the checkpoint\'s run) to '
                        f'{self._max_iters}: the learning-rate schedulers keep the '
                        f'checkpoint\'s state, ending at iterations {self._scheduler_ends()}; '
                        'after the last end the learning rate stays where that schedule left it')
        print_log(message, logger='current')

    def _scheduler_ends(self) -> List[int]:
        schedulers = self.runner.param_schedulers or []
        if isinstance(schedulers, dict):
            schedulers = [s for group in schedulers.values() for s in group]
        return [int(s.end) for s in schedulers]
