"""Shared skeleton of the REF-VLM visual unit decoders (paper §4.3): routed ``<REF>`` states are
the decoder queries of a DETR-style transformer decoder over the fused vision pyramid; the
predictions are matched to the targets inside each TRP group (:class:`GroupHungarianAssigner`).

Our own, as the paper requires and unlike the reference code (DESIGN.md §8): padded queries are
masked out of self-attention, so a padded slot never changes a real query's output.
"""
from abc import abstractmethod
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.models.layers import DetrTransformerDecoder
from mmdet.models.layers.transformer import coordinate_to_encoding
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmrefvlm.registry import TASK_UTILS
from .pyramid_fusion import PyramidFusion


def query_self_attn_mask(query_mask: Tensor, num_heads: int) -> Tensor:
    """Self-attention mask that hides padded queries.

    Valid queries attend to every valid query of their sample and never to padding; a padded
    query attends only to itself (so its softmax row is never empty and nothing turns NaN).

    Args:
        query_mask: ``[B, Q]`` bool, True on valid queries.
        num_heads: attention heads (``nn.MultiheadAttention`` wants one mask per (sample, head)).

    Returns:
        Tensor: ``[B * num_heads, Q, Q]`` bool, True where attention is **blocked**.
    """
    num_queries = query_mask.shape[1]
    eye = torch.eye(num_queries, dtype=torch.bool, device=query_mask.device)
    allowed = torch.where(query_mask[:, :, None], query_mask[:, None, :].expand(
        -1, num_queries, -1), eye[None])
    return (~allowed).repeat_interleave(num_heads, dim=0)


class RefDecoderHead(BaseModule):
    """Input projection, pyramid fusion, decoder, group matching and the loss loop.

    A subclass adds its prediction branch: :meth:`forward` (per-layer raw outputs),
    :meth:`layer_predictions` (per-layer, per-sample ``InstanceData`` of the valid queries, with the
    fields its match costs read), :meth:`matching_targets`, :meth:`layer_loss`, :attr:`loss_names`
    and ``predict``.

    Attributes:
        loss_names: names of the losses of one decoder layer, e.g. ``('loss_bbox', 'loss_iou')``.
        aux_loss_names: names of the losses of :meth:`auxiliary_losses` (once per head).

    Args:
        in_channels: width of the LLM hidden states (the routed queries).
        pyramid_channels: channels of each vision pyramid level, strides ascending.
        embed_dims: decoder width.
        num_layers: decoder layers (MMDet ``DetrTransformerDecoderLayer``).
        num_heads: attention heads.
        feedforward_channels: FFN hidden width.
        dropout: attention and FFN dropout.
        num_groups: GroupNorm groups of the pyramid projections.
        aux_loss: also supervise every intermediate decoder layer (losses named ``d{i}.*``).
        assigner: config of the :class:`GroupHungarianAssigner`.
        init_cfg: MMEngine init config.
        memory_levels: indices of the pyramid levels fused into the decoder memory (default:
            all). Dropping the finest level cuts the cross-attention cost about 4x.
    """

    loss_names: Tuple[str, ...] = ()
    aux_loss_names: Tuple[str, ...] = ()

    def __init__(self, in_channels: int, pyramid_channels: Sequence[int], embed_dims: int,
                 num_layers: int, num_heads: int, feedforward_channels: int, dropout: float,
                 num_groups: int, aux_loss: bool, assigner: dict,
                 init_cfg: Optional[dict] = None,
                 memory_levels: Optional[Sequence[int]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        levels = tuple(range(len(pyramid_channels))) if memory_levels is None else tuple(
            memory_levels)
        if not levels or any(not 0 <= i < len(pyramid_channels) for i in levels):
            raise ValueError(f'{type(self).__name__}: memory_levels={memory_levels} must name '
                             f'pyramid levels in [0, {len(pyramid_channels) - 1}]')
        self.memory_levels = levels
        self.embed_dims = embed_dims
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.aux_loss = aux_loss
        self.input_proj = nn.Sequential(nn.Linear(in_channels, embed_dims),
                                        nn.LayerNorm(embed_dims))
        self.pyramid_fusion = PyramidFusion([pyramid_channels[i] for i in levels], embed_dims,
                                            num_groups)
        attn_cfg = dict(embed_dims=embed_dims, num_heads=num_heads, dropout=dropout,
                        batch_first=True)
        self.decoder = DetrTransformerDecoder(
            num_layers=num_layers,
            layer_cfg=dict(
                self_attn_cfg=dict(attn_cfg),
                cross_attn_cfg=dict(attn_cfg),
                ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=feedforward_channels,
                             num_fcs=2, ffn_drop=dropout,
                             act_cfg=dict(type='ReLU', inplace=True))),
            return_intermediate=True)
        self.assigner = TASK_UTILS.build(assigner)

    def prepare(self, queries: Tensor, pyramid: Sequence[Tensor],
                batch_img_metas: Sequence[dict]) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Projected queries ``[B, Q, embed_dims]`` and the fused memory ``(memory, memory_pos
        [B, N, embed_dims], memory_padding_mask [B, N])`` the decoder reads."""
        memory, memory_pos, memory_mask = self.pyramid_fusion(self.memory_pyramid(pyramid),
                                                              batch_img_metas)
        return self.input_proj(queries), memory, memory_pos, memory_mask

    def conditional_query_pos(self, reference: Tensor) -> Tensor:
        """Query positions of conditional decoding (Conditional / DAB-DETR): the reference
        centres ``[B, Q, >=2]`` (normalised ``cx, cy`` first) sine-encoded like the memory
        positions, detached, so that every cross-attention starts looking near them.

        Returns:
            Tensor: ``[B, Q, embed_dims]``.
        """
        return coordinate_to_encoding(reference[..., :2].detach().float(),
                                      num_feats=self.embed_dims // 2)

    def memory_pyramid(self, pyramid: Sequence[Tensor]) -> List[Tensor]:
        """The pyramid levels the decoder reads (``memory_levels``), in fusion order."""
        return [pyramid[i] for i in self.memory_levels]

    def memory_sizes(self, pyramid: Sequence[Tensor]) -> List[Tuple[int, int]]:
        """``(h, w)`` of each memory level, in fusion order."""
        return [tuple(feat.shape[-2:]) for feat in self.memory_pyramid(pyramid)]

    def run_decoder(self, query: Tensor, query_mask: Tensor, memory: Tensor, memory_pos: Tensor,
                    memory_mask: Tensor, query_pos: Optional[Tensor] = None) -> Tensor:
        """The decoder over the fused memory; ``query_pos [B, Q, embed_dims]`` (optional) is
        added to the queries of every attention, as in Conditional / DAB-DETR.

        Returns:
            Tensor: ``[num_layers, B, Q, embed_dims]``.
        """
        # The positions also go into the values: a query's cross-attention output then carries
        # the (sine-encoded) location of what it attended to, which the box regression reads
        # directly; with position only in the keys (DETR) localisation must be relearned from
        # content and converges far more slowly.
        return self.decoder(
            query=query, key=memory, value=memory + memory_pos, query_pos=query_pos,
            key_pos=memory_pos,
            key_padding_mask=memory_mask,
            self_attn_mask=query_self_attn_mask(query_mask, self.num_heads))

    @abstractmethod
    def forward(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                batch_img_metas: Sequence[dict]) -> Tensor:
        """Raw per-layer outputs ``[num_layers, B, Q, ...]``."""

    @abstractmethod
    def layer_predictions(self, outputs: Tensor, query_mask: Tensor,
                          batch_img_metas: Sequence[dict]) -> List[List[InstanceData]]:
        """Per layer, per sample: the valid queries' predictions (differentiable)."""

    @abstractmethod
    def matching_targets(self, targets: Sequence[InstanceData], outputs: Tensor,
                         batch_img_metas: Sequence[dict]) -> List[InstanceData]:
        """Per sample: the targets in the frame of the predictions."""

    @abstractmethod
    def layer_loss(self, preds: Sequence[InstanceData], gts: Sequence[InstanceData],
                   matches: Sequence[Tuple[Tensor, Tensor]],
                   batch_img_metas: Sequence[dict]) -> Dict[str, Tensor]:
        """Losses of one decoder layer from the matched pairs of every sample."""

    def match_meta(self, img_meta: dict) -> dict:
        """Image meta handed to the match costs (subclasses may change the frame)."""
        return img_meta

    def _supervised_layers(self) -> List[int]:
        return list(range(self.num_layers)) if self.aux_loss else [self.num_layers - 1]

    def _layer_prefix(self, layer: int) -> str:
        return '' if layer == self.num_layers - 1 else f'd{layer}.'

    def loss(self, queries: Tensor, query_mask: Tensor, group_ids: Tensor,
             pyramid: Sequence[Tensor], targets: Sequence[InstanceData],
             batch_img_metas: Sequence[dict]) -> Dict[str, Tensor]:
        """Losses of the valid queries, matched to their targets inside each group.

        Args:
            queries: ``[B, Q, C_llm]``.
            query_mask: ``[B, Q]`` bool.
            group_ids: ``[B, Q]`` long, -1 on padding.
            pyramid: per level ``[B, C_i, h_i, w_i]``.
            targets: per sample the targets of the valid queries, in query order, with
                ``group_ids``.
            batch_img_metas: per sample image meta.

        Returns:
            dict: ``loss_*`` of the last layer and ``d{i}.loss_*`` of the others (``aux_loss``);
            with no valid query, zeros that still depend on every parameter.
        """
        if not bool(query_mask.any()):
            return self._empty_losses(queries, pyramid, batch_img_metas)
        outputs, aux = self.forward_with_aux(queries, query_mask, pyramid, batch_img_metas)
        per_layer = self.layer_predictions(outputs, query_mask, batch_img_metas)
        gts = self.matching_targets(targets, outputs, batch_img_metas)
        pred_group_ids = [group_ids[b][query_mask[b]] for b in range(len(gts))]
        gt_group_ids = [gt.group_ids.to(group_ids.device) for gt in targets]
        layers = self._supervised_layers()
        num = len(gts)
        matches = self.assigner.assign_batch(
            [pred for layer in layers for pred in per_layer[layer]], list(gts) * len(layers),
            pred_group_ids * len(layers), gt_group_ids * len(layers),
            [self.match_meta(meta) for meta in batch_img_metas] * len(layers))
        losses = {}
        for i, layer in enumerate(layers):
            layer_losses = self.layer_loss(per_layer[layer], gts, matches[i * num:(i + 1) * num],
                                           batch_img_metas)
            prefix = self._layer_prefix(layer)
            losses.update({prefix + name: value for name, value in layer_losses.items()})
        losses.update(self.auxiliary_losses(aux, query_mask, group_ids, gts, batch_img_metas))
        return losses

    def forward_with_aux(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                         batch_img_metas: Sequence[dict]) -> Tuple[Tensor, dict]:
        """:meth:`forward`'s outputs and whatever :meth:`auxiliary_losses` reads (none here)."""
        return self(queries, query_mask, pyramid, batch_img_metas), {}

    def auxiliary_losses(self, aux: dict, query_mask: Tensor, group_ids: Tensor,
                         gts: Sequence[InstanceData],
                         batch_img_metas: Sequence[dict]) -> Dict[str, Tensor]:
        """Losses beyond the per-layer matched ones (named in :attr:`aux_loss_names`), from
        :meth:`forward_with_aux`'s ``aux`` and the :meth:`matching_targets` ``gts``."""
        return {}

    def _empty_losses(self, queries: Tensor, pyramid: Sequence[Tensor],
                      batch_img_metas: Sequence[dict]) -> Dict[str, Tensor]:
        """Zero losses from a real forward of one dummy query (every parameter gets a
        gradient, so DDP never waits on a head that saw no target: paper App. C.2)."""
        if queries.shape[1] > 0:
            dummy = queries[:1, :1]
        else:
            dummy = queries.new_zeros((1, 1, queries.shape[-1]))
        dummy_mask = torch.ones(1, 1, dtype=torch.bool, device=queries.device)
        outputs, aux = self.forward_with_aux(dummy, dummy_mask, [feat[:1] for feat in pyramid],
                                             batch_img_metas[:1])
        zero = outputs.float().sum() * 0.
        for value in aux.values():  # what only the auxiliary losses read
            if isinstance(value, Tensor):
                zero = zero + value[value.isfinite()].float().sum() * 0.
        losses = {self._layer_prefix(layer) + name: zero
                  for layer in self._supervised_layers() for name in self.loss_names}
        losses.update({name: zero for name in self.aux_loss_names})
        return losses
