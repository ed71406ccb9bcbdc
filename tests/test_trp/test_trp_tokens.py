"""Special-token registration: ids, idempotence, pad token and embedding resizing."""
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from mmrefvlm.trp import SPECIAL_TOKENS, add_special_tokens, special_token_ids


def _tiny_llama(vocab_size: int) -> LlamaForCausalLM:
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=16, intermediate_size=32,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=64, tie_word_embeddings=False)
    return LlamaForCausalLM(config)


def test_special_tokens_order():
    assert SPECIAL_TOKENS == ('<Phrase>', '</Phrase>', '<Unit>', '</Unit>', '<REF>', '<Task>',
                              '</Task>', '<image>', '<region>')


def test_add_special_tokens_new_ids_pad_and_resize(make_tokenizer):
    tokenizer = make_tokenizer()
    assert tokenizer.pad_token is None
    content_size = len(tokenizer)
    model = _tiny_llama(content_size)
    old_rows = model.get_input_embeddings().weight.detach().clone()

    ids = add_special_tokens(tokenizer, model)

    assert set(ids) == set(SPECIAL_TOKENS) | {'pad'}
    # every added id is new: none reuses a content id, the pad included
    assert sorted(ids.values()) == list(range(content_size, content_size + 10))
    assert tokenizer.pad_token == '<pad>' and tokenizer.pad_token_id == ids['pad']
    assert len(tokenizer) == content_size + 10
    assert model.get_input_embeddings().weight.shape == (content_size + 10, 16)
    assert model.get_output_embeddings().weight.shape == (content_size + 10, 16)
    assert torch.equal(model.get_input_embeddings().weight[:content_size], old_rows)
    for token, token_id in ids.items():
        if token != 'pad':
            assert tokenizer.convert_ids_to_tokens(token_id) == token
    assert special_token_ids(tokenizer) == ids


def test_add_special_tokens_is_idempotent(make_tokenizer):
    tokenizer = make_tokenizer()
    model = _tiny_llama(len(tokenizer))
    first = add_special_tokens(tokenizer, model)
    size = len(tokenizer)
    weight = model.get_input_embeddings().weight
    second = add_special_tokens(tokenizer, model)
    assert second == first
    assert len(tokenizer) == size
    assert model.get_input_embeddings().weight is weight  # not resized again
    assert tokenizer.additional_special_tokens.count('<REF>') == 1


def test_existing_pad_is_kept_and_larger_model_not_shrunk(make_tokenizer):
    tokenizer = make_tokenizer()
    tokenizer.add_special_tokens({'pad_token': '[PAD]'})
    model = _tiny_llama(len(tokenizer) + 64)  # embeddings already padded to a larger size
    ids = add_special_tokens(tokenizer, model)
    assert tokenizer.pad_token == '[PAD]' and ids['pad'] == tokenizer.convert_tokens_to_ids('[PAD]')
    assert '<pad>' not in tokenizer.get_vocab()
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer) - 9 + 64


def test_special_tokens_are_never_split(trp_tokenizer):
    tokenizer, ids, _ = trp_tokenizer
    text = '<Phrase>dog</Phrase>(<Unit>box</Unit>[0]<REF>)'
    encoded = tokenizer(text, add_special_tokens=False)['input_ids']
    for token in ('<Phrase>', '</Phrase>', '<Unit>', '</Unit>', '<REF>'):
        assert encoded.count(ids[token]) == 1
    # the text between the tags is tokenized on its own and decodes back exactly
    phrase_ids = encoded[encoded.index(ids['<Phrase>']) + 1:encoded.index(ids['</Phrase>'])]
    assert tokenizer.decode(phrase_ids) == 'dog'
    assert tokenizer.decode(encoded, clean_up_tokenization_spaces=False) == text
    # a placeholder glued to words stays one token, and neighbouring spaces are kept
    encoded = tokenizer('see<image> and <region>here', add_special_tokens=False)['input_ids']
    assert ids['<image>'] in encoded and ids['<region>'] in encoded
    assert tokenizer.decode(encoded) == 'see<image> and <region>here'


def test_special_token_ids_requires_registration(make_tokenizer):
    with pytest.raises(ValueError, match='add_special_tokens'):
        special_token_ids(make_tokenizer())
