"""REFVLMDataPreprocessor: normalised images, padded token batches, prompt masks."""
import pytest
import torch
from mmdet.structures import DetDataSample

from mmrefvlm.models.data_preprocessors import REFVLMDataPreprocessor
from mmrefvlm.tokenization import IGNORE_INDEX, build_tokenizer, train_tokenizer
from mmrefvlm.registry import MODELS

S = 8
MEAN, STD = (10.0, 20.0, 30.0), (2.0, 4.0, 8.0)


@pytest.fixture(scope='module')
def tokenizer_cfg(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('tok') / 'tokenizer')
    train_tokenizer(['USER: hello ASSISTANT: hi there</s>'] * 4, out, vocab_size=280)
    return dict(type='generated', path=out)


def _batch(with_labels=True):
    inputs, samples = [], []
    for length, num_prompts in ((5, 2), (3, 0)):
        sample = DetDataSample(metainfo=dict(img_id=str(length)))
        sample.input_ids = torch.arange(10, 10 + length)
        if with_labels:
            sample.labels = torch.full((length, ), IGNORE_INDEX)
            sample.labels[-2:] = sample.input_ids[-2:]
        sample.prompt_masks = torch.ones(num_prompts, S, S)
        samples.append(sample)
        inputs.append(torch.randint(0, 256, (3, S, S), dtype=torch.uint8))
    return dict(inputs=inputs, data_samples=samples)


def _build(tokenizer_cfg):
    return MODELS.build(dict(type='REFVLMDataPreprocessor', mean=MEAN, std=STD,
                             tokenizer=tokenizer_cfg))


def test_training_pads_right_with_the_pad_id(tokenizer_cfg):
    preprocessor = _build(tokenizer_cfg)
    pad = build_tokenizer(tokenizer_cfg).pad_token_id
    data = _batch()
    out = preprocessor(data, training=True)
    batch = out['inputs']
    assert batch['input_ids'].tolist() == [[10, 11, 12, 13, 14], [10, 11, 12, pad, pad]]
    assert batch['attention_mask'].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    assert batch['labels'].tolist() == [[-100, -100, -100, 13, 14], [-100, 11, 12, -100, -100]]
    images = batch['images']
    assert images.shape == (2, 3, S, S) and images.dtype == torch.float32
    raw = data['inputs'][0].float().flip(0)  # BGR → RGB
    expected = (raw - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]
    torch.testing.assert_close(images[0], expected)
    assert [m.shape for m in batch['prompt_masks']] == [(2, S, S), (0, S, S)]
    assert len(out['data_samples']) == 2


def test_test_mode_pads_left_and_has_no_labels(tokenizer_cfg):
    preprocessor = _build(tokenizer_cfg)
    pad = build_tokenizer(tokenizer_cfg).pad_token_id
    batch = preprocessor(_batch(with_labels=False), training=False)['inputs']
    assert batch['input_ids'].tolist() == [[10, 11, 12, 13, 14], [pad, pad, 10, 11, 12]]
    assert batch['attention_mask'].tolist() == [[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]]
    assert batch['labels'] is None
    assert pad not in range(10, 15) and isinstance(preprocessor, REFVLMDataPreprocessor)
