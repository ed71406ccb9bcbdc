"""``RefBoxHead``: the DETR box decoder of REF-VLM (paper §4.3), without a class branch — each
``<REF>`` query is one box of its phrase."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.models.layers import MLP, inverse_sigmoid
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_xyxy_to_cxcywh
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmrefvlm.registry import MODELS
from .canvas import boxes_to_original, canvas_box_factors
from .ref_decoder_head import DETR_BOX_COSTS, DETR_LOSS_BBOX, DETR_LOSS_IOU, RefDecoderHead


@MODELS.register_module()
class RefBoxHead(RefDecoderHead):
    """Box decoder: routed queries → DETR decoder over the fused pyramid → one box per query.

    Boxes are ``cx, cy, w, h`` normalised by the canvas (``pad_shape``), reported as xyxy canvas
    pixels: ``sigmoid(MLP(state))`` as in DETR; with a ``locator``, the decoder is conditioned
    on the located reference box and refines it (``sigmoid(inverse_sigmoid(ref) + MLP(state))``,
    starting from the reference itself).
    Losses (MMDet): ``L1Loss`` on normalised cxcywh and ``GIoULoss`` on xyxy canvas pixels, each
    averaged over the matched targets of the batch.

    Args:
        in_channels: LLM hidden width.
        pyramid_channels: channels of each pyramid level (strides ascending).
        assigner: group assigner config; its costs read ``bboxes`` (xyxy canvas px) and
            normalise by the canvas size.
        loss_bbox: MMDet L1 loss config.
        loss_iou: MMDet GIoU loss config.
        locator: optional :class:`ReferenceLocator` config (our addition; ``None``: the paper).
        **kwargs: :class:`RefDecoderHead` arguments (``decoder``, ``num_groups``, ``aux_loss``,
            ``memory_levels``, ``init_cfg``).
    """

    loss_names = ('loss_bbox', 'loss_iou')
    target_field = 'bboxes'

    def __init__(self,
                 in_channels: int,
                 pyramid_channels: Sequence[int],
                 assigner: dict = dict(type='GroupHungarianAssigner', match_costs=DETR_BOX_COSTS),
                 loss_bbox: dict = DETR_LOSS_BBOX,
                 loss_iou: dict = DETR_LOSS_IOU,
                 locator: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(in_channels, pyramid_channels, assigner, **kwargs)
        self.locator = self.build_locator(locator)
        self.reg_branch = MLP(self.embed_dims, self.embed_dims, 4, 3)
        if self.locator is not None:
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
        """Outputs and what the locator's losses read (:meth:`RefDecoderHead.decode`)."""
        hidden, reference, aux = self.decode(queries, query_mask, pyramid, batch_img_metas)
        delta = self.reg_branch(hidden)
        if reference is None:
            return self.outputs_from(hidden, delta.sigmoid()), aux
        boxes = (inverse_sigmoid(reference).to(hidden.dtype) + delta).sigmoid()
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
        ``group_ids``, with the targets' metainfo (for the locator)."""
        factors = canvas_box_factors(batch_img_metas, outputs.device)
        gts = []
        for b, target in enumerate(targets):
            bboxes = torch.as_tensor(target.bboxes, dtype=torch.float32,
                                     device=outputs.device).reshape(-1, 4)
            gts.append(InstanceData(metainfo=target.metainfo, bboxes=bboxes,
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

    def predict_by_feat(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                        batch_img_metas: Sequence[dict]) -> List[InstanceData]:
        """Boxes of the valid queries.

        Returns:
            list: per sample ``InstanceData`` with one row per valid query, in query order:
            ``bboxes [n, 4]`` xyxy canvas px clipped to the canvas, ``scores [n]`` (1.0: there
            is no class branch).
        """
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

    def rescale(self, pred: InstanceData, img_meta: dict) -> InstanceData:
        """``bboxes`` in original pixels."""
        pred.bboxes = boxes_to_original(pred.bboxes, img_meta)
        return pred
