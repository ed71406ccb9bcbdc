"""The LM loader: random init from a config dict, the GGUF file a registry package ships
(dequantised once, cached as safetensors), and the LoRA option of the neck."""
import pytest
import torch

from mmrefvlm.models.language import build_causal_lm
from mmrefvlm.tokenization import build_tokenizer, find_shipped_gguf
from mmrefvlm.registry import MODELS

TINY_LLAMA = dict(model_type='llama', vocab_size=300, hidden_size=32, intermediate_size=64,
                  num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2)


def test_config_type_builds_random_llama():
    model = build_causal_lm(dict(type='config', config=TINY_LLAMA))
    assert model.config.hidden_size == 32 and model.get_input_embeddings().num_embeddings == 300


def test_missing_local_path_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='lm.path'):
        build_causal_lm(dict(type='pretrained', path=str(tmp_path / 'vicuna-7b')))
    with pytest.raises(ValueError, match="lm.type"):
        build_causal_lm(dict(type='hub', path='lmsys/vicuna-7b-v1.5'))


def test_lora_neck_trains_adapters_and_new_token_rows(tiny_data):
    tokenizer = dict(type='generated', path=f'{tiny_data}/tokenizer')
    neck = MODELS.build(dict(
        type='LLMNeck', lm=dict(type='config', config=dict(TINY_LLAMA, vocab_size=None)),
        tokenizer=tokenizer, visual_channels=16,
        lora=dict(r=4, lora_alpha=8, target_modules=['q_proj', 'v_proj'])))
    trainable = {name for name, p in neck.lm.named_parameters() if p.requires_grad}
    assert any('lora_A' in name for name in trainable)
    assert any('embed_tokens' in name for name in trainable)
    assert not any('mlp.up_proj' in name for name in trainable)  # frozen base weights
    ids = torch.tensor([[neck.special_ids['<image>']] * 4 + [5, 6, 7]])
    out = neck(ids, torch.ones_like(ids), ids.clone(), torch.randn(1, 4, 16), (2, 2), [
        torch.zeros(0, 8, 8)])
    out['loss'].backward()
    assert torch.isfinite(out['loss'])


@pytest.mark.slow
def test_shipped_smollm2_gguf_answers_greedily(tmp_path):
    path = find_shipped_gguf()
    lm = build_causal_lm(dict(type='gguf', path=path, cache_dir=str(tmp_path)))
    tokenizer = build_tokenizer(dict(type='gguf', path=path, cache_dir=str(tmp_path / 'tok')))
    assert lm.num_parameters() == pytest.approx(134.5e6, rel=0.01)
    messages = [{'role': 'user', 'content': 'What is the capital of France?'}]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(prompt, return_tensors='pt', add_special_tokens=False)['input_ids']
    with torch.no_grad():
        out = lm.generate(ids, max_new_tokens=12, do_sample=False)
    assert 'Paris' in tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    # the dequantised weights were cached: a second build reads the safetensors
    assert any(p.suffix == '.safetensors' for p in tmp_path.rglob('*'))
