"""Text encoders of the phrase-similarity metrics."""
import json
import os

import numpy as np
import open_clip
import pytest
import torch

from mmrefvlm.evaluation.metrics.text_encoders import (build_text_encoder, find_minilm_dir,
                                                       normalize_phrase,
                                                       resolve_clip_checkpoint)


def test_exact_encoder_and_normalisation():
    assert normalize_phrase('  The  Red Circle. ') == 'the red circle'
    sim = build_text_encoder(dict(type='exact')).similarity(
        ['Red circle', 'red circles', 'blue square!'], ['red circle', 'blue square'])
    np.testing.assert_array_equal(sim, [[1, 0], [0, 0], [0, 1]])


def test_minilm_loads_offline_and_is_cached():
    assert os.path.isfile(os.path.join(find_minilm_dir(), 'config.json'))
    encoder = build_text_encoder(dict(type='minilm'))
    assert build_text_encoder(dict(type='minilm')) is encoder
    embeddings = encoder.encode(['red circle', 'red circles', 'blue square'])
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-6)
    sim = embeddings @ embeddings.T
    assert sim[0, 1] > sim[0, 2]


def test_bad_configs_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="unknown text encoder type 'bert'"):
        build_text_encoder(dict(type='bert'))
    with pytest.raises(ValueError, match="unknown keys \\['pth'\\]"):
        build_text_encoder(dict(type='clip', pth='x'))
    with pytest.raises(FileNotFoundError, match='neither a checkpoint file'):
        resolve_clip_checkpoint(str(tmp_path))
    (tmp_path / 'open_clip_model.safetensors').write_bytes(b'')
    assert resolve_clip_checkpoint(str(tmp_path)).endswith('open_clip_model.safetensors')


def test_clip_text_tower_loads_a_local_checkpoint(tmp_path):
    config = dict(embed_dim=16,
                  vision_cfg=dict(image_size=32, layers=1, width=32, head_width=16,
                                  patch_size=16),
                  text_cfg=dict(context_length=77, vocab_size=49408, width=32, heads=2,
                                layers=1))
    (tmp_path / 'mmrefvlm-test-tiny-clip.json').write_text(json.dumps(config))
    open_clip.add_model_config(tmp_path / 'mmrefvlm-test-tiny-clip.json')
    torch.manual_seed(0)
    saved = open_clip.create_model('mmrefvlm-test-tiny-clip').eval()
    torch.save(saved.state_dict(), tmp_path / 'open_clip_pytorch_model.bin')

    encoder = build_text_encoder(dict(type='clip', path=str(tmp_path),
                                      model_name='mmrefvlm-test-tiny-clip'))
    texts = ['red circle', 'blue square']
    with torch.no_grad():
        expected = torch.nn.functional.normalize(
            saved.encode_text(open_clip.get_tokenizer('mmrefvlm-test-tiny-clip')(texts)), dim=-1)
    np.testing.assert_allclose(encoder.encode(texts), expected.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(encoder.similarity(texts, texts).diagonal(), 1.0, rtol=1e-6)
