"""Tokenize a rendered conversation into ``input_ids`` and ``labels``."""
import logging
from typing import List, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.logging import print_log

from mmrefvlm.tokenization import IGNORE_INDEX, build_tokenizer
from mmrefvlm.registry import TRANSFORMS
from .conversation import END_OF_TURN, Segment


class ConversationTooLongError(ValueError):
    """A sample that cannot fit ``max_length`` tokens by dropping trailing rounds: its first
    round alone is too long, or (test mode) the input up to the held-out question is.

    A ``ValueError``, so the dataset's ``on_bad_record`` policy applies: the sample is skipped
    and reported (in test mode too, so one long record never aborts an evaluation) or stops
    the run.
    """


# Truncations of a process logged in full before only the counts at powers of ten are.
FULL_WARNINGS = 10


@TRANSFORMS.register_module()
class TokenizeConversation(BaseTransform):
    """Token ids of ``text_segments`` with labels on the assistant answers only.

    Segments are tokenized one by one (no special tokens added) and concatenated after the BOS
    token, so a label boundary never falls inside a token; the ``</s>`` end-of-turn segment
    becomes the tokenizer's EOS id.

    Over-long conversations (the policy): when the text is longer than ``max_length``, trailing
    whole (human, gpt) rounds are dropped, with their targets and visual prompts, so a triplet
    is never cut, and a warning names the record and counts the rounds and tokens dropped (the
    first ``FULL_WARNINGS`` truncations of a process in full, then one line at every power of
    ten with the count so far, so a data set that is cut often does not flood the log). A
    sample whose first round alone is too long, or in test mode (the record has ``gt_answer``)
    whose input up to the held-out question is, raises :class:`ConversationTooLongError`: the
    dataset skips and reports it as its ``on_bad_record`` says.

    Required keys: ``text_segments``, ``target_indices``, ``target_group_ids``,
    ``target_turns``, ``prompt_turns``, ``prompt_masks`` (optional), ``record_id``.

    Added/updated keys: ``input_ids`` (int64 ``[L]``), ``labels`` (int64 ``[L]``, -100 on
    every untrained token; training only), the target lists and ``prompt_masks`` restricted to
    the kept rounds.

    Args:
        tokenizer: config of :func:`mmrefvlm.tokenization.build_tokenizer`.
        max_length: the most tokens a sample may have.
        add_bos: start with the tokenizer's BOS token (when it has one).

    Raises:
        ConversationTooLongError: naming the record, when the first round alone is longer
            than ``max_length`` (or, in test mode, when the whole input is).
        ValueError: naming the record, when a human turn has more ``<region>`` placeholders
            than the record has prompts.
    """

    def __init__(self, tokenizer: dict, max_length: int = 2048, add_bos: bool = True) -> None:
        self.tokenizer_cfg = tokenizer
        self.tokenizer = build_tokenizer(tokenizer)
        self.max_length = max_length
        self.add_bos = add_bos and self.tokenizer.bos_token_id is not None
        if self.tokenizer.eos_token_id is None:
            raise ValueError(f'TokenizeConversation: tokenizer {tokenizer} has no EOS token')
        self.truncated = 0  # samples whose trailing rounds this process dropped

    def transform(self, results: dict) -> dict:
        record = results.get('record_id')
        pieces = self._tokenize(results['text_segments'])
        test_mode = results.get('gt_answer') is not None
        kept_turns = self._fit(pieces, record, test_mode)
        kept = [(ids, trained) for ids, trained, turn in pieces if turn < kept_turns]
        input_ids = np.array([i for ids, _ in kept for i in ids], dtype=np.int64)
        results['input_ids'] = input_ids
        if not test_mode:
            results['labels'] = np.array(
                [i if trained else IGNORE_INDEX for ids, trained in kept for i in ids],
                dtype=np.int64)
        self._restrict_targets(results, kept_turns)
        self._restrict_prompts(results, kept_turns, record)
        return results

    def _tokenize(self, segments: Sequence[Segment]) -> List[Tuple[List[int], bool, int]]:
        """``(ids, trained, turn)`` per segment; the BOS token joins the system part."""
        pieces = []
        if self.add_bos:
            pieces.append(([self.tokenizer.bos_token_id], False, -1))
        for segment in segments:
            if segment.text == END_OF_TURN:
                ids = [self.tokenizer.eos_token_id]
            else:
                ids = self.tokenizer(segment.text, add_special_tokens=False)['input_ids']
            pieces.append((ids, segment.trained, segment.turn))
        return pieces

    def _fit(self, pieces: Sequence[Tuple[List[int], bool, int]], record, test_mode: bool) -> int:
        """The number of leading rounds that fit in ``max_length`` tokens (see the policy)."""
        num_turns = max((turn for _, _, turn in pieces), default=-1) + 1
        ends = np.zeros(num_turns + 1, dtype=np.int64)
        for ids, _, turn in pieces:
            ends[turn + 1:] += len(ids)
        # ends[k] = length of the text made of the system part and rounds 0..k-1
        fitting = int(np.searchsorted(ends, self.max_length, side='right')) - 1
        if test_mode and fitting < num_turns:
            raise ConversationTooLongError(
                f'TokenizeConversation: record {record!r}: the test input has {ends[-1]} tokens, '
                f'more than max_length={self.max_length}')
        if fitting < 1 and num_turns > 0:
            raise ConversationTooLongError(
                f'TokenizeConversation: record {record!r}: its first round alone has {ends[1]} '
                f'tokens, more than max_length={self.max_length}')
        if fitting < num_turns:
            self._log_truncation(
                f'TokenizeConversation: record {record!r}: {ends[-1]} tokens, more than '
                f'max_length={self.max_length}: kept the first {fitting} of {num_turns} rounds '
                f'({ends[fitting]} tokens), dropped {num_turns - fitting} trailing rounds '
                f'({ends[-1] - ends[fitting]} tokens)')
        return fitting

    def _log_truncation(self, message: str) -> None:
        """The first ``FULL_WARNINGS`` truncations in full, then the count at 100, 1000..."""
        self.truncated += 1
        count = self.truncated
        if count > FULL_WARNINGS:
            if count < 100 or str(count).rstrip('0') != '1':
                return
            message = (f'TokenizeConversation: {count} samples truncated to max_length='
                       f'{self.max_length} so far in this process (the latest: '
                       f'{message[len("TokenizeConversation: "):]})')
        elif count == FULL_WARNINGS:
            message += ('; further truncations are counted, and logged at 100, 1000... '
                        'samples')
        print_log(message, logger='current', level=logging.WARNING)

    @staticmethod
    def _restrict_targets(results: dict, kept_turns: int) -> None:
        keep = [i for i, turn in enumerate(results['target_turns']) if turn < kept_turns]
        for key in ('target_indices', 'target_group_ids', 'target_turns'):
            results[key] = [results[key][i] for i in keep]

    @staticmethod
    def _restrict_prompts(results: dict, kept_turns: int, record) -> None:
        prompt_turns = results['prompt_turns']
        masks = results.get('prompt_masks')
        available = 0 if masks is None else len(masks)
        if len(prompt_turns) > available:
            raise ValueError(f'TokenizeConversation: record {record!r}: the human turns have '
                             f'{len(prompt_turns)} <region> placeholders but the record has '
                             f'{available} prompts')
        keep = [i for i, turn in enumerate(prompt_turns) if turn < kept_turns]
        results['prompt_turns'] = [prompt_turns[i] for i in keep]
        if masks is not None:
            results['prompt_masks'] = masks[np.array(keep, dtype=np.int64)]

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(tokenizer={self.tokenizer_cfg}, '
                f'max_length={self.max_length})')
