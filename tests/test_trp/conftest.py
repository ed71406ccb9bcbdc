"""Fixtures for the TRP tests: a tiny byte-level BPE tokenizer trained offline, in memory."""
import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from mmrefvlm.trp import add_special_tokens

_CORPUS = (
    'A dog runs in the park. There are two capybaras, a big one and a small one.',
    'the left dog; a red box (small) near [the] keypoint mask depth person cat.',
    'Task Command: task name, answer element, unit: none. Name Unit Num 0 1 2 3 4 5',
)


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A fresh byte-level BPE tokenizer (every character encodable) without special tokens."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    backend.train_from_iterator(_CORPUS * 4, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend)


@pytest.fixture
def make_tokenizer():
    """Factory of fresh tokenizers (each test may add tokens to its own)."""
    return build_tokenizer


@pytest.fixture(scope='session')
def trp_tokenizer():
    """``(tokenizer, special_ids, decode)`` with the TRP special tokens added; do not modify."""
    tokenizer = build_tokenizer()
    special_ids = add_special_tokens(tokenizer)

    def decode(ids):
        return tokenizer.decode(list(ids), clean_up_tokenization_spaces=False)

    return tokenizer, special_ids, decode
