"""Helpers for tests and benchmarks that shrink the shipped configs (as MMDetection's
``mmdet.testing``)."""


def shrink_decoder(decoder: dict, embed_dims: int = 32) -> dict:
    """A head's ``decoder`` config at test size: one layer, ``embed_dims`` wide, two heads."""
    attention = dict(decoder['layer_cfg']['self_attn_cfg'], embed_dims=embed_dims, num_heads=2)
    ffn = dict(decoder['layer_cfg']['ffn_cfg'], embed_dims=embed_dims,
               feedforward_channels=2 * embed_dims)
    return dict(decoder, num_layers=1,
                layer_cfg=dict(self_attn_cfg=attention, cross_attn_cfg=attention, ffn_cfg=ffn))
