"""Shared skeleton of the REF-VLM visual unit decoders (paper §4.3): routed ``<REF>`` states are
the decoder queries of a DETR-style transformer decoder over the fused vision pyramid; the
predictions are matched to the targets inside each TRP group (:class:`GroupHungarianAssigner`).

Our own, as the paper requires and unlike the reference code (DESIGN.md §8): padded queries are
masked out of self-attention, so a padded slot never changes a real query's output.
"""
import copy
from abc import abstractmethod
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.models.layers import DetrTransformerDecoder
from mmdet.models.layers.transformer import coordinate_to_encoding
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmrefvlm.registry import MODELS, TASK_UTILS
from .pyramid_fusion import PyramidFusion
from .unit_head import RefUnitHead

# The DETR decoder of the paper's box and mask heads (MMDet ``DetrTransformerDecoder``
# arguments, plus ``positions_in_values``: see :class:`RefQueryDecoder`).
DETR_DECODER = dict(
    num_layers=6,
    layer_cfg=dict(
        self_attn_cfg=dict(embed_dims=256, num_heads=8, dropout=0.0, batch_first=True),
        cross_attn_cfg=dict(embed_dims=256, num_heads=8, dropout=0.0, batch_first=True),
        ffn_cfg=dict(embed_dims=256, feedforward_channels=1024, num_fcs=2, ffn_drop=0.0,
                     act_cfg=dict(type='ReLU', inplace=True))),
    return_intermediate=True)
# DETR's box losses and match costs (L1 on normalised cxcywh, GIoU), shared by every head and
# module that regresses boxes.
DETR_LOSS_BBOX = dict(type='L1Loss', loss_weight=5.0)
DETR_LOSS_IOU = dict(type='GIoULoss', loss_weight=2.0)
DETR_BOX_COSTS = [
    dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
    dict(type='IoUCost', iou_mode='giou', weight=2.0)
]


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


class RefQueryDecoder(DetrTransformerDecoder):
    """MMDet's DETR decoder over the fused memory, padded queries hidden from self-attention.

    Args:
        positions_in_values: also add the memory positions to the values (our addition, off in
            the paper): a query's cross-attention output then carries the location of what it
            attended to, which a box regression reads directly.
        **kwargs: :class:`DetrTransformerDecoder` arguments (``num_layers``, ``layer_cfg``,
            ``return_intermediate``...).
    """

    def __init__(self, positions_in_values: bool = False, **kwargs) -> None:
        super().__init__(**copy.deepcopy(kwargs))
        self.positions_in_values = positions_in_values

    def forward(self, query: Tensor, query_mask: Tensor, memory: Tensor, memory_pos: Tensor,
                memory_mask: Tensor, query_pos: Optional[Tensor] = None) -> Tensor:
        """Decode ``query [B, Q, C]`` over ``memory`` / ``memory_pos [B, N, C]``
        (``memory_mask [B, N]`` True on padding); ``query_pos [B, Q, C]`` (optional) is added
        to the queries of every attention, as in Conditional / DAB-DETR.

        Returns:
            Tensor: ``[num_layers, B, Q, C]`` (``return_intermediate``).
        """
        return super().forward(
            query=query, key=memory,
            value=memory + memory_pos if self.positions_in_values else memory,
            query_pos=query_pos, key_pos=memory_pos, key_padding_mask=memory_mask,
            self_attn_mask=query_self_attn_mask(query_mask, self.layers[0].self_attn.num_heads))


class RefDecoderHead(RefUnitHead):
    """Input projection, pyramid fusion, decoder, group matching and the loss loop.

    A subclass adds its prediction branch: :meth:`forward` (per-layer raw outputs),
    :meth:`layer_predictions` (per-layer, per-sample ``InstanceData`` of the valid queries, with the
    fields its match costs read), :meth:`matching_targets`, :meth:`layer_loss`, :attr:`loss_names`
    and :meth:`predict_by_feat`. A subclass that takes a ``locator`` builds it with
    :meth:`build_locator`; decoding is then conditioned on where each query points.

    Attributes:
        loss_names: names of the losses of one decoder layer, e.g. ``('loss_bbox', 'loss_iou')``.

    Args:
        in_channels: width of the LLM hidden states (the routed queries).
        pyramid_channels: channels of each vision pyramid level, strides ascending.
        assigner: config of the :class:`GroupHungarianAssigner`.
        decoder: :class:`RefQueryDecoder` config (MMDet ``DetrTransformerDecoder`` arguments);
            its attention width is the head's ``embed_dims``.
        num_groups: GroupNorm groups of the pyramid projections.
        aux_loss: also supervise every intermediate decoder layer (losses named ``d{i}.*``).
        memory_levels: indices of the pyramid levels fused into the decoder memory (default:
            all). Dropping the finest level cuts the cross-attention cost about 4x.
        init_cfg: MMEngine init config.
    """

    loss_names: Tuple[str, ...] = ()

    def __init__(self, in_channels: int, pyramid_channels: Sequence[int], assigner: dict,
                 decoder: dict = DETR_DECODER, num_groups: int = 32, aux_loss: bool = True,
                 memory_levels: Optional[Sequence[int]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        levels = tuple(range(len(pyramid_channels))) if memory_levels is None else tuple(
            memory_levels)
        if not levels or any(not 0 <= i < len(pyramid_channels) for i in levels):
            raise ValueError(f'{type(self).__name__}: memory_levels={memory_levels} must name '
                             f'pyramid levels in [0, {len(pyramid_channels) - 1}]')
        self.memory_levels = levels
        self.embed_dims = decoder['layer_cfg']['self_attn_cfg']['embed_dims']
        self.num_layers = decoder['num_layers']
        self.aux_loss = aux_loss
        self.input_proj = nn.Sequential(nn.Linear(in_channels, self.embed_dims),
                                        nn.LayerNorm(self.embed_dims))
        self.pyramid_fusion = PyramidFusion([pyramid_channels[i] for i in levels],
                                            self.embed_dims, num_groups)
        self.decoder = RefQueryDecoder(**decoder)
        self.assigner = TASK_UTILS.build(assigner)
        self.locator = None

    def build_locator(self, locator: Optional[dict]) -> Optional[nn.Module]:
        """The :class:`ReferenceLocator` (or another registered locator) of ``locator``, at the
        head's width; ``None`` for the paper's plain decoding."""
        return None if locator is None else MODELS.build(dict(locator,
                                                              embed_dims=self.embed_dims))

    def prepare(self, queries: Tensor, pyramid: Sequence[Tensor],
                batch_img_metas: Sequence[dict]) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Projected queries ``[B, Q, embed_dims]`` and the fused memory ``(memory, memory_pos
        [B, N, embed_dims], memory_padding_mask [B, N])`` the decoder reads."""
        memory, memory_pos, memory_mask = self.pyramid_fusion(self.memory_pyramid(pyramid),
                                                              batch_img_metas)
        return self.input_proj(queries), memory, memory_pos, memory_mask

    def memory_pyramid(self, pyramid: Sequence[Tensor]) -> List[Tensor]:
        """The pyramid levels the decoder reads (``memory_levels``), in fusion order."""
        return [pyramid[i] for i in self.memory_levels]

    def decode(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
               batch_img_metas: Sequence[dict]) -> Tuple[Tensor, Optional[Tensor], dict]:
        """Run the decoder; with a locator, locate the queries first and decode from there
        (their reference centres, sine-encoded and detached, are the query positions of every
        attention, as in Conditional / DAB-DETR).

        Returns:
            tuple: decoder states ``[L, B, Q, C]``; reference boxes ``[B, Q, 4]`` (cxcywh
            normalised by the canvas) or ``None`` without a locator; and what the locator's
            losses read (``dict(log_weights, token_boxes, sizes)``, empty without one).
        """
        query, memory, memory_pos, memory_mask = self.prepare(queries, pyramid, batch_img_metas)
        if self.locator is None:
            return self.decoder(query, query_mask, memory, memory_pos, memory_mask), None, {}
        sizes = [tuple(feat.shape[-2:]) for feat in self.memory_pyramid(pyramid)]
        reference, log_weights, token_boxes = self.locator(query, memory + memory_pos,
                                                           memory_mask, sizes)
        query_pos = coordinate_to_encoding(reference[..., :2].detach().float(),
                                           num_feats=self.embed_dims // 2)
        hidden = self.decoder(query, query_mask, memory, memory_pos, memory_mask,
                              query_pos.to(query.dtype))
        return hidden, reference, dict(log_weights=log_weights, token_boxes=token_boxes,
                                       sizes=sizes)

    @abstractmethod
    def layer_predictions(self, outputs: Tensor, query_mask: Tensor,
                          batch_img_metas: Sequence[dict]) -> List[List[InstanceData]]:
        """Per layer, per sample: the valid queries' predictions (differentiable)."""

    @abstractmethod
    def matching_targets(self, targets: Sequence[InstanceData], outputs: Tensor,
                         batch_img_metas: Sequence[dict]) -> List[InstanceData]:
        """Per sample: the targets in the frame of the predictions, with ``bboxes`` (xyxy canvas
        px, what a locator learns from) and ``group_ids``."""

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

    def loss_keys(self) -> List[str]:
        """``loss_*`` of the supervised layers, then the locator's losses."""
        keys = [self._layer_prefix(layer) + name
                for layer in self._supervised_layers() for name in self.loss_names]
        return keys + list(self.locator.loss_names if self.locator is not None else ())

    def loss_by_feat(self, queries: Tensor, query_mask: Tensor, group_ids: Tensor,
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
            dict: ``loss_*`` of the last layer and ``d{i}.loss_*`` of the others (``aux_loss``),
            then the locator's; with no valid query, zeros that still depend on every parameter.
        """
        if not bool(query_mask.any()):
            return self.empty_loss(queries, pyramid, batch_img_metas)
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
        if self.locator is not None:
            losses.update(self.locator.loss(aux['log_weights'], aux['token_boxes'],
                                            aux['sizes'], query_mask, group_ids, gts,
                                            batch_img_metas))
        return losses
