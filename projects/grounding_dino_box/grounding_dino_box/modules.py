"""Grounding DINO's own modules (MMDetection's ``GroundingDINO`` detector, minus its BERT and its
learned content queries), under the names of MMDetection's checkpoints, and the two stages of its
``forward_transformer`` that REF-VLM's ``<REF>`` queries change: the text-image encoder and the
query selection."""
import copy
from typing import Dict, Optional, Sequence, Tuple

import torch
from mmdet.models.detectors import DeformableDETR
from mmdet.models.layers import SinePositionalEncoding
from mmdet.models.layers.transformer.grounding_dino_layers import (
    GroundingDinoTransformerDecoder, GroundingDinoTransformerEncoder)
from mmdet.models.layers.transformer.utils import (coordinate_to_encoding,
                                                  get_text_sine_pos_embed, inverse_sigmoid)
from mmdet.registry import MODELS as MMDET_MODELS
from torch import Tensor, nn

from mmrefvlm.models.heads.canvas import canvas_padding_masks
from .referring_text import phrase_captions, span_tokens

# MMDetection's Grounding DINO Swin-T (configs/grounding_dino/grounding_dino_swin-t_pretrain_*.py:
# the official `groundingdino_swint_ogc` converted); every width that equals the model width
# (256) is left out here and set from the head's ``embed_dims``.
GDINO_SWIN_T = dict(
    type='SwinTransformer', embed_dims=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
    window_size=7, mlp_ratio=4, qkv_bias=True, qk_scale=None, drop_rate=0.,
    attn_drop_rate=0., drop_path_rate=0., patch_norm=True, out_indices=(1, 2, 3),
    with_cp=False, convert_weights=False)
GDINO_NECK = dict(type='ChannelMapper', kernel_size=1, act_cfg=None, bias=True,
                  norm_cfg=dict(type='GN', num_groups=32), num_outs=4)
GDINO_ENCODER = dict(
    num_layers=6,
    layer_cfg=dict(self_attn_cfg=dict(num_levels=4, dropout=0.0),
                   ffn_cfg=dict(feedforward_channels=2048, ffn_drop=0.0)),
    text_layer_cfg=dict(self_attn_cfg=dict(num_heads=4, dropout=0.0),
                        ffn_cfg=dict(feedforward_channels=1024, ffn_drop=0.0)),
    fusion_layer_cfg=dict(embed_dim=1024, num_heads=4, init_values=1e-4))
GDINO_DECODER = dict(
    num_layers=6, return_intermediate=True,
    layer_cfg=dict(self_attn_cfg=dict(num_heads=8, dropout=0.0),
                   cross_attn_text_cfg=dict(num_heads=8, dropout=0.0),
                   cross_attn_cfg=dict(num_heads=8, dropout=0.0),
                   ffn_cfg=dict(feedforward_channels=2048, ffn_drop=0.0)),
    post_norm_cfg=None)
# the converted official weights have a plain dot-product classifier (no scale, no bias)
GDINO_CONTRASTIVE = dict(max_text_len=256)
GDINO_POSITIONS = dict(normalize=True, offset=0.0, temperature=20)
# Grounding DINO's BERT (MMDetection's ``BertModel``); ``name`` is the local folder of
# ``bert-base-uncased`` (its config, vocabulary and weights: the weights are then replaced by
# Grounding DINO's checkpoint)
GDINO_BERT = dict(type='BertModel', name='checkpoints/bert-base-uncased', pad_to_max=False,
                  use_sub_sentence_represent=True,
                  special_tokens_list=['[CLS]', '[SEP]', '.', '?'], add_pooling_layer=True)
# keys of MMDetection's GroundingDINO checkpoints that REF-VLM does not use: the learned content
# queries (the <REF> states replace them), the denoising-query embedding (no denoising queries)
# and, in a head without a text encoder, BERT and its projection
UNUSED_PREFIXES = ('query_embedding.', 'dn_query_generator.')
TEXT_PREFIXES = ('language_model.', 'text_feat_map.')


def merged(defaults: dict, cfg: dict) -> dict:
    """``cfg`` over ``defaults``, nested dicts merged key by key: a config names only what it
    changes (a layer config that leaves out ``cross_attn_text_cfg`` keeps Grounding DINO's)."""
    result = copy.deepcopy(dict(defaults))
    for key, value in cfg.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def with_width(cfg: dict, embed_dims: int) -> dict:
    """A copy of a nested transformer config with the ``embed_dims`` of every attention and FFN
    in it set: one width for the whole transformer."""
    cfg = copy.deepcopy(dict(cfg))
    for name, value in cfg.items():
        if isinstance(value, dict):
            cfg[name] = with_width(value, embed_dims)
    if any(key in cfg for key in ('num_heads', 'feedforward_channels', 'num_levels')):
        cfg['embed_dims'] = embed_dims
    return cfg


class RefGroundingDinoEncoder(GroundingDinoTransformerEncoder):
    """MMDetection's Grounding DINO encoder (same modules and keys) with two fixes that text
    tokens of several samples need: the text self-attention mask is laid out per sample and then
    per head, as ``nn.MultiheadAttention`` reads it (MMDet repeats it head-major, right only for
    one sample), and the text positions take the encoder's width (MMDet fixes 256)."""

    def forward(self, query: Tensor, query_pos: Tensor, key_padding_mask: Tensor,
                spatial_shapes: Tensor, level_start_index: Tensor, valid_ratios: Tensor,
                memory_text: Tensor, text_attention_mask: Tensor,
                text_self_attention_masks: Tensor,
                text_position_ids: Tensor) -> Tuple[Tensor, Tensor]:
        """Fuse image tokens ``query [B, N, C]`` and text tokens ``memory_text [B, T, C]``.

        Args:
            text_attention_mask: ``[B, T]`` True on padded text tokens.
            text_self_attention_masks: ``[B, T, T]`` True where a text token may attend.
            text_position_ids: ``[B, T]`` position of each token in its phrase.
            (the rest as :meth:`GroundingDinoTransformerEncoder.forward`)

        Returns:
            tuple: image memory ``[B, N, C]`` and text memory ``[B, T, C]``.
        """
        output = query
        reference_points = self.get_encoder_reference_points(
            spatial_shapes, valid_ratios, device=query.device)
        pos_text = get_text_sine_pos_embed(text_position_ids[..., None].float(),
                                           num_pos_feats=memory_text.shape[-1],
                                           exchange_xy=False)
        for layer_id, layer in enumerate(self.layers):
            output, memory_text = self.fusion_layers[layer_id](
                visual_feature=output, lang_feature=memory_text,
                attention_mask_v=key_padding_mask, attention_mask_l=text_attention_mask)
            text_layer = self.text_layers[layer_id]
            memory_text = text_layer(
                query=memory_text, query_pos=pos_text,
                attn_mask=~text_self_attention_masks.repeat_interleave(
                    text_layer.self_attn.num_heads, dim=0),
                key_padding_mask=None)
            output = layer(query=output, query_pos=query_pos, reference_points=reference_points,
                           spatial_shapes=spatial_shapes, level_start_index=level_start_index,
                           key_padding_mask=key_padding_mask)
        return output, memory_text


class RefGroundingDinoDecoder(GroundingDinoTransformerDecoder):
    """MMDetection's Grounding DINO decoder (same modules and keys) whose query positions take
    the decoder's width (``DinoTransformerDecoder`` encodes the reference boxes for 256)."""

    def forward(self, query: Tensor, value: Tensor, key_padding_mask: Tensor,
                self_attn_mask: Tensor, reference_points: Tensor, spatial_shapes: Tensor,
                level_start_index: Tensor, valid_ratios: Tensor, reg_branches: nn.ModuleList,
                memory_text: Tensor, text_attention_mask: Tensor) -> Tuple[Tensor, Tensor]:
        """:meth:`DinoTransformerDecoder.forward` (iterative box refinement, intermediate
        states normed) with the text memory of every layer.

        Returns:
            tuple: states ``[L, B, Q, C]`` and references ``[L + 1, B, Q, 4]`` (sigmoid
            cxcywh, the first the initial one, each the input of the next layer).
        """
        intermediate, references = [], [reference_points]
        for layer_id, layer in enumerate(self.layers):
            reference_input = reference_points[:, :, None] * torch.cat(
                [valid_ratios, valid_ratios], -1)[:, None]
            query_pos = self.ref_point_head(coordinate_to_encoding(
                reference_input[:, :, 0, :], num_feats=self.embed_dims // 2))
            query = layer(query, query_pos=query_pos, value=value,
                          key_padding_mask=key_padding_mask, self_attn_mask=self_attn_mask,
                          spatial_shapes=spatial_shapes, level_start_index=level_start_index,
                          valid_ratios=valid_ratios, reference_points=reference_input,
                          memory_text=memory_text, text_attention_mask=text_attention_mask)
            new_reference = (reg_branches[layer_id](query) +
                             inverse_sigmoid(reference_points, eps=1e-3)).sigmoid()
            reference_points = new_reference.detach()
            intermediate.append(self.norm(query))
            references.append(new_reference)
        return torch.stack(intermediate), torch.stack(references)


class GroundingDinoModules(nn.Module):
    """Grounding DINO's image encoder (Swin + ChannelMapper), text-image encoder, decoder and
    prediction branches, named as in MMDetection's ``GroundingDINO`` (so its checkpoints load by
    key), with the detector's feature flattening and encoder proposals.

    Args:
        embed_dims: the transformer width (256 in Grounding DINO).
        backbone, neck: MMDet configs (the neck's ``in_channels`` default to the Swin's
            ``out_indices`` widths, its ``out_channels`` is ``embed_dims``).
        encoder, decoder: ``GroundingDinoTransformerEncoder`` / ``...Decoder`` arguments,
            merged over ``GDINO_ENCODER`` / ``GDINO_DECODER`` (widths set to ``embed_dims``).
        contrastive_cfg: ``ContrastiveEmbed`` arguments (the classifier of every layer).
        positional_encoding: ``SinePositionalEncoding`` arguments but ``num_feats``.
        text_encoder: ``None``, or MMDetection's ``BertModel`` config (e.g. ``GDINO_BERT``):
            Grounding DINO's frozen BERT, whose phrase tokens (through ``text_feat_map``) join
            the text.
    """

    get_valid_ratio = staticmethod(DeformableDETR.get_valid_ratio)
    # the encoder proposals of two-stage Deformable DETR / DINO (reads memory_trans_fc/_norm)
    gen_encoder_output_proposals = DeformableDETR.gen_encoder_output_proposals

    def __init__(self, embed_dims: int, backbone: dict, neck: dict, encoder: dict,
                 decoder: dict, contrastive_cfg: dict, positional_encoding: dict,
                 text_encoder: Optional[dict] = None) -> None:
        super().__init__()
        self.backbone = MMDET_MODELS.build(backbone)
        neck = dict(neck, out_channels=embed_dims)
        if 'in_channels' not in neck:
            neck['in_channels'] = [backbone['embed_dims'] * 2**i for i in backbone['out_indices']]
        self.neck = MMDET_MODELS.build(neck)
        self.num_levels = neck['num_outs']
        encoder = merged(GDINO_ENCODER, encoder)
        encoder = dict(encoder, layer_cfg=with_width(encoder['layer_cfg'], embed_dims),
                       text_layer_cfg=with_width(encoder['text_layer_cfg'], embed_dims),
                       fusion_layer_cfg=dict(encoder['fusion_layer_cfg'], v_dim=embed_dims,
                                             l_dim=embed_dims))
        encoder['layer_cfg']['self_attn_cfg']['num_levels'] = self.num_levels
        self.encoder = RefGroundingDinoEncoder(**encoder)
        decoder = with_width(merged(GDINO_DECODER, decoder), embed_dims)
        decoder['layer_cfg']['cross_attn_cfg']['num_levels'] = self.num_levels
        self.decoder = RefGroundingDinoDecoder(**decoder)
        self.positional_encoding = SinePositionalEncoding(num_feats=embed_dims // 2,
                                                          **positional_encoding)
        self.level_embed = nn.Parameter(torch.zeros(self.num_levels, embed_dims))
        self.memory_trans_fc = nn.Linear(embed_dims, embed_dims)
        self.memory_trans_norm = nn.LayerNorm(embed_dims)
        # the decoder layers' prediction branches and, last, the encoder's (its losses are
        # built but not used: the REF-VLM head computes its own)
        self.bbox_head = MMDET_MODELS.build(
            dict(type='GroundingDINOHead', num_classes=contrastive_cfg['max_text_len'],
                 embed_dims=embed_dims, num_pred_layer=decoder['num_layers'] + 1,
                 as_two_stage=True, contrastive_cfg=dict(contrastive_cfg), train_cfg=None,
                 loss_cls=dict(type='FocalLoss', use_sigmoid=True)))
        self.language_model = None
        if text_encoder is not None:
            if not text_encoder.get('use_sub_sentence_represent', False):
                raise ValueError('GroundingDinoModules: text_encoder needs '
                                 'use_sub_sentence_represent=True (Grounding DINO\'s phrase '
                                 'masks and positions)')
            self.language_model = MMDET_MODELS.build(text_encoder)
            self.language_model.requires_grad_(False).eval()
            self.text_feat_map = nn.Linear(
                self.language_model.language_backbone.body.language_dim, embed_dims)

    @property
    def unused_prefixes(self) -> Tuple[str, ...]:
        """Prefixes of the checkpoint keys these modules do not hold."""
        return UNUSED_PREFIXES + (TEXT_PREFIXES if self.language_model is None else ())

    def encode_phrases(self, batch_phrases: Sequence[Sequence[str]],
                       device: torch.device) -> Dict:
        """Grounding DINO's text tokens of each sample's phrases (``phrase_captions``), through
        the frozen BERT and ``text_feat_map``: the ``phrase`` argument of
        :func:`referring_text`."""
        captions, spans = phrase_captions(batch_phrases)
        bert = self.language_model
        with torch.no_grad():
            out = bert(captions)
        tokenized = bert.tokenizer.batch_encode_plus(
            captions, max_length=bert.max_tokens,
            padding='max_length' if bert.pad_to_max else 'longest', truncation=True)
        tokens = self.text_feat_map(out['embedded'].to(device))
        return dict(tokens=tokens, mask=out['text_token_mask'].to(device),
                    attention=out['masks'].to(device), positions=out['position_ids'].to(device),
                    group_tokens=span_tokens(tokenized, spans, tokens.shape[1]))

    def train(self, mode: bool = True) -> 'GroundingDinoModules':
        """Set train/eval mode; the frozen BERT stays in eval mode."""
        super().train(mode)
        if self.language_model is not None:
            self.language_model.eval()
        return self

    def init_weights(self) -> None:
        """``DINO.init_weights``: Xavier on the transformer, the deformable attentions' own
        init, the prediction branches' (``GroundingDINOHead.init_weights``), normal level
        embeddings."""
        for module in (self.encoder, self.decoder):
            for p in module.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)
        for m in self.modules():
            if hasattr(m, 'init_weights') and type(m).__name__ == 'MultiScaleDeformableAttention':
                m.init_weights()
        nn.init.xavier_uniform_(self.memory_trans_fc.weight)
        nn.init.normal_(self.level_embed)
        self.bbox_head.init_weights()

    def flatten(self, feats: Sequence[Tensor],
                batch_img_metas: Sequence[dict]) -> Dict[str, Tensor]:
        """The encoder's inputs from the levels ``[B, C, h, w]`` of the canvas (padding masked
        from ``img_shape``/``pad_shape``): ``feat``, ``feat_pos`` (sine + level embedding)
        ``[B, N, C]``, ``feat_mask [B, N]`` True on padding, ``spatial_shapes [L, 2]``,
        ``level_start_index [L]``, ``valid_ratios [B, L, 2]``."""
        sizes = [tuple(feat.shape[-2:]) for feat in feats]
        masks = canvas_padding_masks(batch_img_metas, sizes, feats[0].device)
        flat, pos, flat_masks = [], [], []
        for level, (feat, mask) in enumerate(zip(feats, masks)):
            flat.append(feat.flatten(2).transpose(1, 2))
            level_pos = self.positional_encoding(mask).to(feat.dtype)
            pos.append(level_pos.flatten(2).transpose(1, 2) + self.level_embed[level])
            flat_masks.append(mask.flatten(1))
        spatial_shapes = torch.as_tensor(sizes, dtype=torch.long, device=feats[0].device)
        level_start_index = torch.cat((spatial_shapes.new_zeros(1),
                                       spatial_shapes.prod(1).cumsum(0)[:-1]))
        return dict(feat=torch.cat(flat, 1), feat_pos=torch.cat(pos, 1),
                    feat_mask=torch.cat(flat_masks, 1), spatial_shapes=spatial_shapes,
                    level_start_index=level_start_index,
                    valid_ratios=torch.stack([self.get_valid_ratio(m) for m in masks], 1))
