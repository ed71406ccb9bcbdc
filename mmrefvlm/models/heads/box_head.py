"""``RefBoxHead``: the DETR box decoder of REF-VLM (paper §4.3), without a class branch — each
``<REF>`` query is one box of its phrase."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.layers import MLP, inverse_sigmoid
from mmdet.models.layers.transformer import coordinate_to_encoding
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
        mode_radius: half-side (fraction of the canvas) of the window around the locator's mode
            whose tokens give the reference centre.
        loss_dense_weight: weight of the dense box losses of the finest memory level's tokens
            (:meth:`auxiliary_losses`).
        init_cfg: MMEngine init config.
    """

    loss_names = ('loss_bbox', 'loss_iou')
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
                 reference_size: float = 0.25,
                 loss_locate_weight: float = 1.0,
                 mode_radius: float = 0.08,
                 loss_dense_weight: float = 1.0,
                 init_cfg: Optional[dict] = None,
                 memory_levels: Optional[Sequence[int]] = None) -> None:
        super().__init__(in_channels, pyramid_channels, embed_dims, num_layers, num_heads,
                         feedforward_channels, dropout, num_groups, aux_loss, assigner, init_cfg,
                         memory_levels)
        self.reference_size = reference_size
        self.loss_locate_weight = loss_locate_weight
        self.locator_query = nn.Linear(embed_dims, embed_dims)
        self.locator_key = nn.Linear(embed_dims, embed_dims)
        # a term linear in the token's canvas coordinates: "the leftmost ..." is then a direction
        # of the query (measured: reference inside the box for 0.71 instead of 0.29 of the
        # position-only expressions, ideal queries, 1000 steps)
        self.locator_coords = nn.Linear(2, embed_dims)
        self.mode_radius = mode_radius
        # every token of the finest memory level regresses the box of the object under it
        # (FCOS-style distances to the four sides, normalised by the canvas)
        self.dense_box = nn.Linear(embed_dims, 4)
        nn.init.zeros_(self.dense_box.weight)
        nn.init.constant_(self.dense_box.bias, -2.2)  # sigmoid: 0.1 of the canvas per side
        self.loss_dense_weight = loss_dense_weight
        self.reg_branch = MLP(embed_dims, embed_dims, 4, 3)
        # the decoder starts by predicting the located reference box itself (zero deltas)
        nn.init.zeros_(self.reg_branch.layers[-1].weight)
        nn.init.zeros_(self.reg_branch.layers[-1].bias)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.loss_iou = MODELS.build(loss_iou)

    def token_boxes(self, memory: Tensor, sizes: Sequence[Tuple[int, int]]) -> Tensor:
        """Box of the object under every token of the finest memory level.

        Each token reads the sum of every memory level resampled (bilinear) to the finest grid,
        so that it sees objects larger than its own receptive field.

        Args:
            memory: ``[B, N, C]`` fused memory, levels in ``sizes`` order, finest first.
            sizes: ``(h, w)`` of each level.

        Returns:
            Tensor: ``[B, h_0 * w_0, 4]`` xyxy normalised by the canvas (fp32).
        """
        batch, _, channels = memory.shape
        fused, start = 0, 0
        for height, width in sizes:
            level = memory[:, start:start + height * width].transpose(1, 2).reshape(
                batch, channels, height, width)
            start += height * width
            fused = fused + F.interpolate(level, size=sizes[0], mode='bilinear',
                                          align_corners=False)
        sides = self.dense_box(fused.flatten(2).transpose(1, 2)).float().sigmoid()  # l, t, r, b
        centres = memory_coordinates(sizes[:1], memory.device)  # [n, 2]
        return torch.cat([centres - sides[..., :2], centres + sides[..., 2:]], -1)

    def locate(self, query: Tensor, memory: Tensor, memory_mask: Tensor,
               sizes: Sequence[Tuple[int, int]]) -> Tuple[Tensor, Tensor, Tensor]:
        """Reference box of each query: where it points, and the box read there.

        The query attends (one head, scaled dot product, plus a term linear in the tokens'
        coordinates) over every memory token, supervised densely (:meth:`auxiliary_losses`).
        Around the attention's mode (``mode_radius``), its renormalised weights average the
        finest level's :meth:`token_boxes` into the reference box. Pointing is a dense,
        per-token decision and the box is regressed by every token inside every target: both
        learn in a few hundred steps, where DETR's decoder alone takes many epochs (our
        addition; the decoder then refines the box).

        Args:
            query: ``[B, Q, C]`` projected queries; memory: ``[B, N, C]`` fused pyramid with
            positions; memory_mask: ``[B, N]`` True on canvas padding; sizes: level shapes.

        Returns:
            tuple: ``[B, Q, 4]`` cxcywh normalised by the canvas, the attention log-weights
            ``[B, Q, N]`` (fp32, ``-inf`` on padding) and the token boxes ``[B, n, 4]``.
        """
        coords = memory_coordinates(sizes, memory.device)  # [N, 2]
        keys = self.locator_key(memory) + self.locator_coords(coords - 0.5).to(memory.dtype)
        logits = torch.einsum('bqc,bnc->bqn', self.locator_query(query), keys)
        log_weights = (logits.float() / query.shape[-1]**0.5).masked_fill(
            memory_mask[:, None], float('-inf')).log_softmax(-1)
        # only the mode's neighbourhood: a mean over the whole image lands between candidates
        # whenever the mass is split (measured, ideal queries: centre inside the box for 0.57
        # of them against 0.70 for the mode)
        count = sizes[0][0] * sizes[0][1]
        mode = coords[log_weights.argmax(-1)]  # [B, Q, 2]
        near = ((coords[None, None, :count] - mode[:, :, None]).abs() <=
                self.mode_radius).all(-1)  # [B, Q, n]: some finest-level token always is
        local = log_weights[..., :count].masked_fill(~near, float('-inf')).softmax(-1)
        token_boxes = self.token_boxes(memory, sizes)
        box = (local @ token_boxes).clamp(1e-3, 1 - 1e-3)  # [B, Q, 4] xyxy
        return bbox_xyxy_to_cxcywh(box).clamp(1e-3, 1 - 1e-3), log_weights, token_boxes

    def decode_boxes(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                     batch_img_metas: Sequence[dict]) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Decoder states ``[L, B, Q, C]``, boxes ``[L, B, Q, 4]`` (cxcywh normalised: each
        layer refines the located reference box), the locator's log-weights ``[B, Q, N]`` and
        the token boxes ``[B, n, 4]`` (:meth:`locate`)."""
        query, memory, memory_pos, memory_mask = self.prepare(queries, pyramid, batch_img_metas)
        reference, log_weights, token_boxes = self.locate(
            query, memory + memory_pos, memory_mask, self.memory_sizes(pyramid))
        # conditional decoding (Conditional / DAB-DETR): the located centre, sine-encoded like
        # the memory positions, steers every cross-attention to the referred region
        query_pos = coordinate_to_encoding(reference[..., :2].detach(),
                                           num_feats=self.embed_dims // 2).to(query.dtype)
        hidden = self.run_decoder(query, query_mask, memory, memory_pos, memory_mask, query_pos)
        boxes = (inverse_sigmoid(reference).to(hidden.dtype) + self.reg_branch(hidden)).sigmoid()
        return hidden, boxes, log_weights, token_boxes

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
        """Outputs and ``dict(log_weights=[B, Q, N], token_boxes=[B, n, 4], sizes=level
        shapes)`` for :meth:`auxiliary_losses`."""
        hidden, boxes, log_weights, token_boxes = self.decode_boxes(queries, query_mask, pyramid,
                                                                    batch_img_metas)
        return self.outputs_from(hidden, boxes), dict(
            log_weights=log_weights, token_boxes=token_boxes, sizes=self.memory_sizes(pyramid))

    def memory_sizes(self, pyramid: Sequence[Tensor]) -> List[Tuple[int, int]]:
        """``(h, w)`` of each memory level, in fusion order."""
        return [tuple(feat.shape[-2:]) for feat in self.memory_pyramid(pyramid)]

    def auxiliary_losses(self, aux: dict, query_mask: Tensor, group_ids: Tensor,
                         gts: Sequence[InstanceData],
                         batch_img_metas: Sequence[dict]) -> Dict[str, Tensor]:
        """``loss_locate``: the locator's attention mass outside the query's targets;
        ``loss_dense_bbox`` / ``loss_dense_iou``: the :meth:`token_boxes` of the finest level.

        For each valid query, ``-log`` of the attention weight on memory tokens whose centre
        lies inside a ground-truth box of its group (a group's queries share one phrase, so no
        matching is needed: each must look inside the union of its group's boxes), averaged
        over the valid queries. A dense, per-token signal for where the phrase is, which the
        soft-argmax alone only gets through its centre (our addition).

        Every finest-level token whose centre lies inside a target box regresses that box (the
        smallest one where boxes overlap, as in FCOS): the head's L1 on normalised xyxy and
        GIoU, averaged over those tokens, times ``loss_dense_weight``.
        """
        log_weights = aux['log_weights']
        coords = memory_coordinates(aux['sizes'], log_weights.device)  # [N, 2] normalised
        factors = canvas_box_factors(batch_img_metas, log_weights.device)[:, :2]  # [B, 2]
        terms, dense_pred, dense_gt = [], [], []
        count = aux['sizes'][0][0] * aux['sizes'][0][1]
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
            fine = inside[:, :count]  # [T, n]
            if bool(fine.any()):
                area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
                owner = torch.where(fine, area[:, None], float('inf')).argmin(0)  # [n]
                tokens = fine.any(0)
                dense_pred.append(aux['token_boxes'][b][tokens] * factors[b].repeat(2))
                dense_gt.append(boxes[owner[tokens]])
            terms.append(-log_weights[b][valid][covered].masked_fill(
                ~region[covered], float('-inf')).logsumexp(-1))
        terms = torch.cat(terms) if terms else log_weights.new_zeros(0)
        # no covered box at all (e.g. every box between the token centres): zero, not NaN
        loss = terms.mean() if len(terms) else log_weights.new_zeros(())
        losses = dict(loss_locate=loss * self.loss_locate_weight)
        if dense_pred:
            pred_px, gt_px = torch.cat(dense_pred), torch.cat(dense_gt)
            scale = factors.new_tensor([batch_img_metas[0]['pad_shape'][1],
                                        batch_img_metas[0]['pad_shape'][0]]).repeat(2)
            num = pred_px.shape[0]
            losses['loss_dense_bbox'] = self.loss_dense_weight * self.loss_bbox(
                pred_px / scale, gt_px / scale, avg_factor=num)
            losses['loss_dense_iou'] = self.loss_dense_weight * self.loss_iou(
                pred_px, gt_px, avg_factor=num)
        else:  # no target token: zeros that keep the dense branch in the graph
            zero = aux['token_boxes'].sum() * 0.
            losses.update(loss_dense_bbox=zero, loss_dense_iou=zero)
        return losses

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
