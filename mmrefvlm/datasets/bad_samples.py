"""The ``on_bad_record`` policy for a sample that the pipeline rejects at load time.

A record can pass validation and still fail in a data-loader worker: its image is missing,
truncated or of another size, or its conversation cannot fit ``max_length``. The pipeline raises
a ``ValueError`` naming the fault (``ImageFileError``, ``ConversationTooLongError``, ...) and the
dataset hands it to :func:`skip_or_raise` with the file and line of the record, so training skips
the sample (the loader draws another), evaluation skips and reports it (``REFVLMTestLoop`` drops
it from the batch and lists it at the end, so one bad sample never aborts an evaluation), and
``on_bad_record='raise'`` stops the run with the message.
"""
import logging
from dataclasses import dataclass
from typing import Optional

from mmengine.logging import print_log

BAD_RECORD_POLICIES = ('skip', 'raise')


@dataclass(frozen=True)
class SkippedSample:
    """Stands in a test batch for a sample the pipeline rejected.

    Args:
        message: the fault, with the file and line of the record.
    """
    message: str


def skip_or_raise(message: str, error: Exception, policy: str,
                  test_mode: bool) -> Optional[SkippedSample]:
    """Apply ``on_bad_record`` to a sample whose pipeline raised ``error``.

    Args:
        message: the fault for the user, naming the file and line of the record.
        error: the pipeline's exception (chained to the one raised).
        policy: ``'skip'`` or ``'raise'``.
        test_mode: the dataset serves an evaluation.

    Returns:
        ``None`` in training (MMEngine's dataset then draws another sample), a
        :class:`SkippedSample` in test mode; a warning with ``message`` is logged either way.

    Raises:
        ValueError: with ``message``, when ``policy`` is ``'raise'``.
    """
    if policy not in BAD_RECORD_POLICIES:
        raise ValueError(f'on_bad_record must be one of {BAD_RECORD_POLICIES}, got {policy!r}')
    if policy == 'raise':
        raise ValueError(message) from error
    print_log(f'{message} (skipped)', logger='current', level=logging.WARNING)
    return SkippedSample(message) if test_mode else None
