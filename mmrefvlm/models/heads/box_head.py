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
from .locator import LocatedDecodingMixin, ReferenceLocator
from .ref_decoder_head import RefDecoderHead


@MODELS.register_module()
class RefBoxHead(LocatedDecodingMixin, RefDecoderHead):
    """Box decoder: routed queries → DETR decoder over the fused pyramid → one box per query.

    Boxes are ``cx, cy, w, h`` normalised by the canvas (``pad_shape``), reported as xyxy canvas
    pixels: the reference box of a :class:`ReferenceLocator` (where the query points, the box
    read there), refined by a decoder conditioned on its centre
    (``sigmoid(inverse_sigmoid(ref) + delta)``).
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
        loss_locate_weight, mode_radius: see :class:`ReferenceLocator`, which also uses
            ``loss_bbox`` and ``loss_iou`` for its token boxes.
        init_cfg: MMEngine init config.
    """

    loss_names = ('loss_bbox', 'loss_iou')
    target_field = 'bboxes'  # the target it reads (REFVLM ``train_cfg.extra_units``)
    aux_loss_names = ('loss_locate', 'loss_dense_bbox', 'loss_dense_iou')

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
                 loss_locate_weight: float = 1.0,
                 mode_radius: float = 0.08,
                 init_cfg: Optional[dict] = None,
                 memory_levels: Optional[Sequence[int]] = None) -> None:
        super().__init__(in_channels, pyramid_channels, embed_dims, num_layers, num_heads,
                         feedforward_channels, dropout, num_groups, aux_loss, assigner, init_cfg,
                         memory_levels)
        self.locator = ReferenceLocator(embed_dims, mode_radius, loss_locate_weight,
                                        loss_bbox, loss_iou)
        self.reg_branch = MLP(embed_dims, embed_dims, 4, 3)
        # the decoder starts by predicting the located reference box itself (zero deltas)
        nn.init.zeros_(self.reg_branch.layers[-1].weight)
        nn.init.zeros_(self.reg_branch.layers[-1].bias)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.loss_iou = MODELS.build(loss_iou)

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
        """Outputs (each decoder layer refines the located reference box) and the locator's
        ``dict(log_weights, token_boxes, sizes)`` for :meth:`auxiliary_losses`."""
        hidden, reference, aux = self.located_decode(queries, query_mask, pyramid,
                                                     batch_img_metas)
        boxes = (inverse_sigmoid(reference).to(hidden.dtype) + self.reg_branch(hidden)).sigmoid()
        return self.outputs_from(hidden, boxes), aux

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
