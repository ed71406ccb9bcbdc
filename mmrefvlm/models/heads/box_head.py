"""``RefBoxHead``: the DETR box decoder of REF-VLM (paper §4.3), without a class branch — each
``<REF>`` query is one box of its phrase."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.models.layers import MLP, inverse_sigmoid
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_xyxy_to_cxcywh
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmrefvlm.registry import MODELS
from .canvas import canvas_box_factors
from .pyramid_fusion import memory_coordinates
from .ref_decoder_head import RefDecoderHead


@MODELS.register_module()
class RefBoxHead(RefDecoderHead):
    """Box decoder: routed queries → DETR decoder over the fused pyramid → one box per query.

    Boxes are ``cx, cy, w, h`` normalised by the canvas (``pad_shape``), reported as xyxy canvas
    pixels: a reference box located by a soft-argmax of the query over the fused pyramid
    (:meth:`locate`), refined by the decoder (``sigmoid(inverse_sigmoid(ref) + delta)``).
    Losses (MMDet): ``L1Loss`` on normalised cxcywh and ``GIoULoss`` on xyxy canvas pixels, each
    averaged over the matched targets of the batch.

    Args:
        in_channels: LLM hidden width.
        pyramid_channels: channels of each pyramid level (strides ascending).
        embed_dims, num_layers, num_heads, feedforward_channels, dropout, num_groups, aux_loss,
            memory_levels: see :class:`RefDecoderHead`.
        assigner: group assigner config; its costs read ``bboxes`` (xyxy canvas px) and
            normalise by the canvas size.
        loss_bbox: MMDet L1 loss config.
        loss_iou: MMDet GIoU loss config.
        reference_size: width and height (fraction of the canvas) of the located reference box
            before the decoder's refinement.
        loss_locate_weight: weight of the locator's dense loss (:meth:`auxiliary_losses`).
        init_cfg: MMEngine init config.
    """

    loss_names = ('loss_bbox', 'loss_iou')
    aux_loss_names = ('loss_locate', )

    def __init__(self,
                 in_channels: int,
                 pyramid_channels: Sequence[int],
                 embed_dims: int = 256,
                 num_layers: int = 6,
                 num_heads: int = 8,
                 feedforward_channels: int = 1024,
                 dropout: float = 0.0,
                 num_groups: int = 32,
                 aux_loss: bool = True,
                 assigner: dict = dict(
                     type='GroupHungarianAssigner',
                     match_costs=[
                         dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
                         dict(type='IoUCost', iou_mode='giou', weight=2.0)
                     ]),
                 loss_bbox: dict = dict(type='L1Loss', loss_weight=5.0),
                 loss_iou: dict = dict(type='GIoULoss', loss_weight=2.0),
                 reference_size: float = 0.25,
                 loss_locate_weight: float = 1.0,
                 init_cfg: Optional[dict] = None,
                 memory_levels: Optional[Sequence[int]] = None) -> None:
        super().__init__(in_channels, pyramid_channels, embed_dims, num_layers, num_heads,
                         feedforward_channels, dropout, num_groups, aux_loss, assigner, init_cfg,
                         memory_levels)
        self.reference_size = reference_size
        self.loss_locate_weight = loss_locate_weight
        self.locator_query = nn.Linear(embed_dims, embed_dims)
        self.locator_key = nn.Linear(embed_dims, embed_dims)
        self.reg_branch = MLP(embed_dims, embed_dims, 4, 3)
        # the decoder starts by predicting the located reference box itself (zero deltas)
        nn.init.zeros_(self.reg_branch.layers[-1].weight)
        nn.init.zeros_(self.reg_branch.layers[-1].bias)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.loss_iou = MODELS.build(loss_iou)

    def locate(self, query: Tensor, memory: Tensor, memory_mask: Tensor,
               sizes: Sequence[Tuple[int, int]]) -> Tuple[Tensor, Tensor]:
        """Reference box of each query from a soft-argmax over the fused memory.

        The query attends (one head, scaled dot product) over every memory token; the
        attention-weighted mean of the token centres is the box centre, and the size starts at
        ``reference_size`` (the decoder regresses the real size: a size read from the spread of
        the attention collapses with it). The attention is supervised densely
        (:meth:`auxiliary_losses`), unlike DETR's decoder alone, whose localisation takes many
        epochs to emerge (our addition; the decoder then refines the box).

        Args:
            query: ``[B, Q, C]`` projected queries; memory: ``[B, N, C]`` fused pyramid with
            positions; memory_mask: ``[B, N]`` True on canvas padding; sizes: level shapes.

        Returns:
            tuple: ``[B, Q, 4]`` cxcywh normalised by the canvas and the attention log-weights
            ``[B, Q, N]`` (fp32, ``-inf`` on padding).
        """
        logits = torch.einsum('bqc,bnc->bqn', self.locator_query(query),
                              self.locator_key(memory)) / query.shape[-1]**0.5
        log_weights = logits.float().masked_fill(memory_mask[:, None],
                                                 float('-inf')).log_softmax(-1)
        coords = memory_coordinates(sizes, memory.device)  # [N, 2]
        centre = (log_weights.exp() @ coords).clamp(1e-3, 1 - 1e-3)
        size = centre.new_full(centre.shape, self.reference_size)
        return torch.cat([centre, size], -1), log_weights

    def decode_boxes(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                     batch_img_metas: Sequence[dict]) -> Tuple[Tensor, Tensor, Tensor]:
        """Decoder states ``[L, B, Q, C]``, boxes ``[L, B, Q, 4]`` (cxcywh normalised: each
        layer refines the located reference box) and the locator's log-weights ``[B, Q, N]``."""
        hidden, query, (memory, memory_mask) = self.decode_with_memory(
            queries, query_mask, pyramid, batch_img_metas)
        reference, log_weights = self.locate(query, memory, memory_mask,
                                             self.memory_sizes(pyramid))
        boxes = (inverse_sigmoid(reference).to(hidden.dtype) + self.reg_branch(hidden)).sigmoid()
        return hidden, boxes, log_weights

    def outputs_from(self, hidden: Tensor, boxes: Tensor) -> Tensor:
        """Per-layer outputs from the decoder states and boxes (here: the boxes)."""
        return boxes

    def forward(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                batch_img_metas: Sequence[dict]) -> Tensor:
        """Boxes of every query at every decoder layer.

        Args:
            queries: ``[B, Q, C_llm]``; query_mask: ``[B, Q]`` bool; pyramid: per level
            ``[B, C_i, h_i, w_i]``; batch_img_metas: per sample meta.

        Returns:
            Tensor: ``[num_layers, B, Q, 4]`` cxcywh normalised by the canvas, in ``(0, 1)``
            (subclasses append their fields through :meth:`outputs_from`).
        """
        return self.forward_with_aux(queries, query_mask, pyramid, batch_img_metas)[0]

    def forward_with_aux(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                         batch_img_metas: Sequence[dict]) -> Tuple[Tensor, dict]:
        """Outputs and ``dict(log_weights=[B, Q, N], sizes=level shapes)`` for the locator."""
        hidden, boxes, log_weights = self.decode_boxes(queries, query_mask, pyramid,
                                                       batch_img_metas)
        return self.outputs_from(hidden, boxes), dict(log_weights=log_weights,
                                                      sizes=self.memory_sizes(pyramid))

    def memory_sizes(self, pyramid: Sequence[Tensor]) -> List[Tuple[int, int]]:
        """``(h, w)`` of each memory level, in fusion order."""
        return [tuple(feat.shape[-2:]) for feat in self.memory_pyramid(pyramid)]

    def auxiliary_losses(self, aux: dict, query_mask: Tensor, group_ids: Tensor,
                         gts: Sequence[InstanceData],
                         batch_img_metas: Sequence[dict]) -> Dict[str, Tensor]:
        """``loss_locate``: the locator's attention mass outside the query's targets.

        For each valid query, ``-log`` of the attention weight on memory tokens whose centre
        lies inside a ground-truth box of its group (a group's queries share one phrase, so no
        matching is needed: each must look inside the union of its group's boxes), averaged
        over the valid queries. A dense, per-token signal for where the phrase is, which the
        soft-argmax alone only gets through its centre (our addition).
        """
        log_weights = aux['log_weights']
        coords = memory_coordinates(aux['sizes'], log_weights.device)  # [N, 2] normalised
        factors = canvas_box_factors(batch_img_metas, log_weights.device)[:, :2]  # [B, 2]
        terms = []
        for b, gt in enumerate(gts):
            valid = query_mask[b]
            if not bool(valid.any()):
                continue
            boxes = gt.bboxes  # [T, 4] xyxy canvas px
            points = coords * factors[b]  # [N, 2] canvas px
            inside = ((points[None, :, 0] >= boxes[:, None, 0]) &
                      (points[None, :, 0] <= boxes[:, None, 2]) &
                      (points[None, :, 1] >= boxes[:, None, 1]) &
                      (points[None, :, 1] <= boxes[:, None, 3]))  # [T, N]
            same_group = group_ids[b][valid][:, None] == gt.group_ids[None]  # [q, T]
            region = (same_group.float() @ inside.float()) > 0  # [q, N]
            covered = region.any(-1)  # a box between token centres has no region: skipped
            terms.append(-log_weights[b][valid][covered].masked_fill(
                ~region[covered], float('-inf')).logsumexp(-1))
        terms = torch.cat(terms) if terms else log_weights.new_zeros(0)
        # no covered box at all (e.g. every box between the token centres): zero, not NaN
        loss = terms.mean() if len(terms) else log_weights.new_zeros(())
        return dict(loss_locate=loss * self.loss_locate_weight)

    def layer_predictions(self, outputs: Tensor, query_mask: Tensor,
                          batch_img_metas: Sequence[dict]) -> List[List[InstanceData]]:
        """Per layer, per sample: ``norm_bboxes [n, 4]`` (normalised cxcywh) and ``bboxes
        [n, 4]`` (xyxy canvas px) of the valid queries, in fp32 (bf16 cannot hold pixel
        coordinates exactly)."""
        factors = canvas_box_factors(batch_img_metas, outputs.device)
        per_layer = []
        for layer_boxes in outputs:
            samples = []
            for b, mask in enumerate(query_mask):
                norm = layer_boxes[b][mask].float()
                samples.append(InstanceData(
                    norm_bboxes=norm, bboxes=bbox_cxcywh_to_xyxy(norm) * factors[b]))
            per_layer.append(samples)
        return per_layer

    def matching_targets(self, targets: Sequence[InstanceData], outputs: Tensor,
                         batch_img_metas: Sequence[dict]) -> List[InstanceData]:
        """Targets as ``bboxes`` (xyxy canvas px), ``norm_bboxes`` (normalised cxcywh) and
        ``group_ids`` (for :meth:`auxiliary_losses`)."""
        factors = canvas_box_factors(batch_img_metas, outputs.device)
        gts = []
        for b, target in enumerate(targets):
            bboxes = torch.as_tensor(target.bboxes, dtype=torch.float32,
                                     device=outputs.device).reshape(-1, 4)
            gts.append(InstanceData(bboxes=bboxes,
                                    norm_bboxes=bbox_xyxy_to_cxcywh(bboxes) / factors[b],
                                    group_ids=target.group_ids.to(outputs.device)))
        return gts

    def match_meta(self, img_meta: dict) -> dict:
        """``BBoxL1Cost`` normalises by ``img_shape``; hand it the canvas so the cost and the L1
        loss share one frame."""
        return dict(img_meta, img_shape=img_meta['pad_shape'])

    def layer_loss(self, preds: Sequence[InstanceData], gts: Sequence[InstanceData],
                   matches: Sequence[Tuple[Tensor, Tensor]],
                   batch_img_metas: Sequence[dict]) -> Dict[str, Tensor]:
        """L1 (normalised cxcywh) and GIoU (xyxy px) over the matched pairs of the batch."""
        pred_norm = torch.cat([p.norm_bboxes[pi] for p, (pi, _) in zip(preds, matches)])
        pred_px = torch.cat([p.bboxes[pi] for p, (pi, _) in zip(preds, matches)])
        gt_norm = torch.cat([g.norm_bboxes[gi] for g, (_, gi) in zip(gts, matches)])
        gt_px = torch.cat([g.bboxes[gi] for g, (_, gi) in zip(gts, matches)])
        num_matched = max(pred_norm.shape[0], 1)
        return dict(
            loss_bbox=self.loss_bbox(pred_norm, gt_norm, avg_factor=num_matched),
            loss_iou=self.loss_iou(pred_px, gt_px, avg_factor=num_matched))

    @torch.no_grad()
    def predict(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                batch_img_metas: Sequence[dict]) -> List[InstanceData]:
        """Boxes of the valid queries.

        Returns:
            list: per sample ``InstanceData`` with one row per valid query, in query order:
            ``bboxes [n, 4]`` xyxy canvas px clipped to the canvas, ``scores [n]`` (1.0: there
            is no class branch).
        """
        if not bool(query_mask.any()):
            return [InstanceData(bboxes=queries.new_zeros((0, 4)), scores=queries.new_zeros(0))
                    for _ in batch_img_metas]
        last = self.layer_predictions(self(queries, query_mask, pyramid, batch_img_metas)[-1:],
                                      query_mask, batch_img_metas)[0]
        results = []
        for pred, meta in zip(last, batch_img_metas):
            height, width = meta['pad_shape'][:2]
            bboxes = torch.stack([pred.bboxes[:, 0].clamp(0, width), pred.bboxes[:, 1].clamp(
                0, height), pred.bboxes[:, 2].clamp(0, width), pred.bboxes[:, 3].clamp(
                    0, height)], -1)
            results.append(InstanceData(bboxes=bboxes, scores=bboxes.new_ones(len(bboxes))))
        return results
