"""Benchmark: greedy generation tokens/s with ``<REF>`` capture, at batch 1, 8 and 32.

The tiny config's model (random init; weights do not change the cost of a step) generates a fixed
number of tokens per sample from real prompts of the generated set. Two loops decode the same
prompt embeddings side by side: ours (:func:`greedy_generate`, which keeps the last-layer state of
every generated token for the ``<REF>`` queries) and HF ``generate`` (greedy, no hidden states),
so the ratio is the price of the capture.

    python tools/benchmark/generation.py [--device cuda] [--new-tokens 64]
"""
import argparse
import tempfile

import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

from mmrefvlm.datasets.synthetic import generate
from mmrefvlm.models.language.generation import greedy_generate
from mmrefvlm.registry import DATASETS, MODELS
from mmrefvlm.testing import build_generated_tokenizer, tiny_config

from _timing import median_seconds  # the script's folder is on sys.path

BATCHES = (1, 8, 32)


def build(data_root: str, device: str):
    """The tiny model and its test set, reading ``data_root``."""
    build_generated_tokenizer(data_root)
    init_default_scope('mmrefvlm')
    cfg = tiny_config(data_root)
    dataset_cfg = cfg.test_dataloader.dataset
    model = MODELS.build(cfg.model).to(device).eval()
    return model, DATASETS.build(dataset_cfg)


def prompt_embeddings(model, dataset, batch: int):
    """``(inputs_embeds [B, L, D], attention_mask [B, L])`` of the first ``batch`` samples."""
    data = model.data_preprocessor(pseudo_collate([dataset[i] for i in range(batch)]), False)
    inputs = data['inputs']
    global_tokens, _ = model.extract_feat(inputs['images'])
    embeds = model.neck.embed(inputs['input_ids'], global_tokens, model.backbone.global_grid,
                              inputs['prompt_masks'])
    return embeds, inputs['attention_mask']


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--new-tokens', type=int, default=64)
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as root:
        generate(root, num_train=40, num_val=max(BATCHES), seed=0, image_size=128)
        model, dataset = build(root, args.device)
        lm, embed = model.neck.lm, model.neck.lm.get_input_embeddings()
        n = args.new_tokens
        print('| batch | ours, with <REF> capture (tokens/s) | HF generate (tokens/s) | '
              'ours / HF |')
        print('|---|---|---|---|')
        for batch in BATCHES:
            embeds, mask = prompt_embeddings(model, dataset, batch)
            seconds = median_seconds([  # eos_id -1: every sample decodes exactly n tokens
                lambda: greedy_generate(lm, embeds, mask, embed, eos_id=-1, pad_id=0,
                                        max_new_tokens=n),
                lambda: lm.generate(inputs_embeds=embeds, attention_mask=mask, do_sample=False,
                                    max_new_tokens=n, min_new_tokens=n, pad_token_id=0)
            ], args.device, repeats=3)
            ours, hf = (batch * n / s for s in seconds)
            print(f'| {batch} | {ours:.0f} | {hf:.0f} | {ours / hf:.2f} |')


if __name__ == '__main__':
    main()
