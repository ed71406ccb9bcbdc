"""Helpers for tests and benchmarks that shrink the shipped configs (as MMDetection's
``mmdet.testing``)."""


def shrink_decoder(decoder: dict, embed_dims: int = 32) -> dict:
    """A head's ``decoder`` config at test size: one layer, ``embed_dims`` wide, two heads."""
    attention = dict(decoder['layer_cfg']['self_attn_cfg'], embed_dims=embed_dims, num_heads=2)
    ffn = dict(decoder['layer_cfg']['ffn_cfg'], embed_dims=embed_dims,
               feedforward_channels=2 * embed_dims)
    return dict(decoder, num_layers=1,
                layer_cfg=dict(self_attn_cfg=attention, cross_attn_cfg=attention, ffn_cfg=ffn))


def script_generation(model, answer: str, seed: int = 0) -> None:
    """Make a REF-VLM ``model`` answer ``answer`` to every prompt, its last-layer states random
    but fixed by ``seed``, so that the router and the heads run on a known answer (a random LM
    rarely writes a triplet)."""
    import torch

    from mmrefvlm.models.language.generation import GenerationOutput
    neck = model.neck
    ids = neck.tokenizer(answer, add_special_tokens=False)['input_ids']
    generator = torch.Generator().manual_seed(seed)
    hidden = torch.randn(1, len(ids) + 1, neck.hidden_size, generator=generator)

    def generate(input_ids, *args, **kwargs):
        batch = input_ids.shape[0]
        tokens = torch.tensor([ids + [neck.tokenizer.eos_token_id]]).repeat(batch, 1)
        return GenerationOutput(tokens, hidden.repeat(batch, 1, 1), torch.full((batch, ), len(ids)))

    neck.generate = generate
