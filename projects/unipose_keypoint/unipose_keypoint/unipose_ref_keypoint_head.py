"""``UniPoseRefKeypointHead``: a UniPose-style two-level keypoint decoder as REF-VLM's keypoint
unit (paper App. C.2: the keypoint decoder swapped for UniPose's).

Each ``<REF>`` state is one instance query of :class:`UniPoseDecoder` (ours, built from
MMDetection's Deformable-DETR layers: UniPose is not installable); its box, keypoints and scores
come out in ``RefKeypointHead``'s ``InstanceData`` fields and frames.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_xyxy_to_cxcywh
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmrefvlm.models.heads import RefUnitHead
from mmrefvlm.models.heads.canvas import (boxes_to_original, canvas_box_factors,
                                          points_to_original)
from mmrefvlm.models.heads.keypoint_head import matched_keypoint_losses
from mmrefvlm.models.heads.ref_decoder_head import (DETR_BOX_COSTS, DETR_LOSS_BBOX,
                                                    DETR_LOSS_IOU)
from mmrefvlm.registry import MODELS, TASK_UTILS
from .checkpoint import load_unipose_state
from .unipose_decoder import UniPoseDecoder

# ED-Pose's keypoint losses and costs, as RefKeypointHead's (keypoint L1 10, OKS 4, box L1 5,
# GIoU 2); the OKS cost and loss receive the head's keypoint_sigmas.
UNIPOSE_ASSIGNER = dict(type='GroupHungarianAssigner',
                        match_costs=[*DETR_BOX_COSTS, dict(type='KeypointOKSCost', weight=4.0)])
UNIPOSE_LOSS_KEYPOINT = dict(type='L1Loss', loss_weight=10.0)
UNIPOSE_LOSS_OKS = dict(type='OKSLoss', loss_weight=4.0)
UNIPOSE_LOSS_VISIBILITY = dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)


@MODELS.register_module()
class UniPoseRefKeypointHead(RefUnitHead):
    """Routed ``<REF>`` queries → :class:`UniPoseDecoder` → one box, ``K`` keypoints and ``K``
    visibility logits per query.

    The decoder (every weight under ``unipose.``, so the stage checkpoint the model starts from
    never loads into it) reads the tower's pyramid levels ``memory_levels``; the query
    projection (``query_proj``, LLM width → the decoder's ``embed_dims``) is the head's own.

    Matching: once per batch, on the last keypoint layer's outputs, inside each TRP group (box
    L1 + GIoU + OKS costs, ``RefKeypointHead``'s); every supervised layer uses that matching
    (ours: ED-Pose matches each layer). Losses over the matched pairs, each averaged over them:

    - every keypoint layer (``d{i}.`` before the last, ``aux_loss``): ``loss_bbox`` (L1 on
      normalised cxcywh), ``loss_iou`` (GIoU), ``loss_keypoint`` (L1 on the normalised ``x, y``
      of labelled keypoints), ``loss_oks`` (``1 - OKS``, canvas px, ``s²`` = target box area)
      and ``loss_visibility`` (sigmoid cross-entropy against ``v > 0``);
    - every instance layer (``inst{i}.``, ``aux_loss``): ``loss_bbox`` and ``loss_iou``.

    Args:
        in_channels: LLM hidden width.
        pyramid_channels: channels of the tower's pyramid levels, strides ascending.
        keypoint_names: the ``K`` keypoint names (the decoder's keypoint prompts).
        keypoint_sigmas: ``[K]`` OKS sigmas.
        decoder: :class:`UniPoseDecoder`'s arguments but the two above (``embed_dims``,
            the layer counts...; its defaults, UniPose's size, where not given).
        memory_levels: indices of the pyramid levels the decoder reads (default: all).
        unipose_checkpoint: local path of this decoder's weights (``unipose.`` keys or the
            decoder's own), loaded by :meth:`init_weights`; ``None``: random init.
        aux_loss: also supervise the intermediate and the instance layers.
        assigner: group assigner config; its costs read ``bboxes`` (xyxy canvas px) and
            ``keypoints`` (canvas px). A ``KeypointOKSCost`` without ``sigmas`` receives
            ``keypoint_sigmas``.
        loss_bbox, loss_iou, loss_keypoint, loss_oks, loss_visibility: loss configs.
        init_cfg: MMEngine init config.
    """

    target_field = 'keypoints'
    keypoint_loss_names = ('loss_bbox', 'loss_iou', 'loss_keypoint', 'loss_oks',
                           'loss_visibility')
    instance_loss_names = ('loss_bbox', 'loss_iou')

    def __init__(self,
                 in_channels: int,
                 pyramid_channels: Sequence[int],
                 keypoint_names: Sequence[str],
                 keypoint_sigmas: Sequence[float],
                 decoder: Optional[dict] = None,
                 memory_levels: Optional[Sequence[int]] = None,
                 unipose_checkpoint: Optional[str] = None,
                 aux_loss: bool = True,
                 assigner: dict = UNIPOSE_ASSIGNER,
                 loss_bbox: dict = DETR_LOSS_BBOX,
                 loss_iou: dict = DETR_LOSS_IOU,
                 loss_keypoint: dict = UNIPOSE_LOSS_KEYPOINT,
                 loss_oks: dict = UNIPOSE_LOSS_OKS,
                 loss_visibility: dict = UNIPOSE_LOSS_VISIBILITY,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(keypoint_sigmas) != len(keypoint_names):
            raise ValueError(f'UniPoseRefKeypointHead: {len(keypoint_names)} keypoint_names but '
                             f'{len(keypoint_sigmas)} keypoint_sigmas')
        levels = tuple(range(len(pyramid_channels))) if memory_levels is None else tuple(
            memory_levels)
        if not levels or any(not 0 <= i < len(pyramid_channels) for i in levels):
            raise ValueError(f'UniPoseRefKeypointHead: memory_levels={memory_levels} must name '
                             f'pyramid levels in [0, {len(pyramid_channels) - 1}]')
        self.memory_levels = levels
        self.num_keypoints = len(keypoint_names)
        self.keypoint_sigmas = tuple(float(s) for s in keypoint_sigmas)
        self.unipose = UniPoseDecoder([pyramid_channels[i] for i in levels], keypoint_names,
                                      **(decoder or {}))
        self.query_proj = nn.Sequential(nn.Linear(in_channels, self.unipose.embed_dims),
                                        nn.LayerNorm(self.unipose.embed_dims))
        self.num_instance_layers = len(self.unipose.instance_layers)
        self.num_keypoint_layers = len(self.unipose.keypoint_layers)
        self.unipose_checkpoint = unipose_checkpoint
        self.aux_loss = aux_loss
        assigner = dict(assigner, match_costs=[
            dict(cost, sigmas=list(self.keypoint_sigmas))
            if cost.get('type') == 'KeypointOKSCost' and 'sigmas' not in cost else cost
            for cost in assigner.get('match_costs', [])])
        self.assigner = TASK_UTILS.build(assigner)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.loss_iou = MODELS.build(loss_iou)
        self.loss_keypoint = MODELS.build(loss_keypoint)
        self.loss_oks = MODELS.build(dict(loss_oks, sigmas=self.keypoint_sigmas))
        self.loss_visibility = MODELS.build(loss_visibility)

    def init_weights(self) -> None:
        """MMEngine initialisation, then the decoder's weights from ``unipose_checkpoint``."""
        super().init_weights()
        if self.unipose_checkpoint is not None:
            load_unipose_state(self, self.unipose_checkpoint)

    # ------------------------------------------------------------------------------ forward
    def forward(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                batch_img_metas: Sequence[dict]) -> Tensor:
        """Keypoint-level outputs ``[num_keypoint_layers, B, Q, 4 + 3K]``
        (:meth:`UniPoseDecoder.forward`)."""
        return self.forward_with_aux(queries, query_mask, pyramid, batch_img_metas)[0]

    def forward_with_aux(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                         batch_img_metas: Sequence[dict]) -> Tuple[Tensor, dict]:
        """Keypoint-level outputs and ``dict(instance_boxes=[num_instance_layers, B, Q, 4])``.

        Args:
            queries: ``[B, Q, C_llm]``; query_mask: ``[B, Q]`` bool; pyramid: the tower's
                levels ``[B, C_i, h_i, w_i]``; batch_img_metas: per sample meta.
        """
        outputs, instance_boxes = self.unipose(
            self.query_proj(queries), query_mask, [pyramid[i] for i in self.memory_levels],
            batch_img_metas)
        return outputs, dict(instance_boxes=instance_boxes)

    def layer_predictions(self, outputs: Tensor, query_mask: Tensor,
                          batch_img_metas: Sequence[dict]) -> List[InstanceData]:
        """One layer's predictions of the valid queries, per sample, fp32: ``norm_bboxes``
        (normalised cxcywh), ``bboxes`` (xyxy canvas px) and, when ``outputs`` holds them,
        ``norm_keypoints [n, K, 2]``, ``keypoints [n, K, 2]`` (canvas px) and ``visibility
        [n, K]`` logits.

        Args:
            outputs: ``[B, Q, 4]`` or ``[B, Q, 4 + 3K]`` (one layer of :meth:`forward_with_aux`).
        """
        factors = canvas_box_factors(batch_img_metas, outputs.device)
        num_kpt = self.num_keypoints
        preds = []
        for b, mask in enumerate(query_mask):
            valid = outputs[b][mask].float()
            pred = InstanceData(norm_bboxes=valid[:, :4],
                                bboxes=bbox_cxcywh_to_xyxy(valid[:, :4]) * factors[b])
            if valid.shape[-1] > 4:
                pred.norm_keypoints = valid[:, 4:4 + 2 * num_kpt].unflatten(-1, (num_kpt, 2))
                pred.keypoints = pred.norm_keypoints * factors[b, :2]
                pred.visibility = valid[:, 4 + 2 * num_kpt:]
            preds.append(pred)
        return preds

    # --------------------------------------------------------------------------------- loss
    def loss_keys(self) -> List[str]:
        """The last keypoint layer's losses, then (``aux_loss``) the other keypoint layers'
        (``d{i}.``) and the instance layers' (``inst{i}.``)."""
        keys = list(self.keypoint_loss_names)
        if self.aux_loss:
            keys += [f'd{i}.{name}' for i in range(self.num_keypoint_layers - 1)
                     for name in self.keypoint_loss_names]
            keys += [f'inst{i}.{name}' for i in range(self.num_instance_layers)
                     for name in self.instance_loss_names]
        return keys

    def matching_targets(self, targets: Sequence[InstanceData],
                         batch_img_metas: Sequence[dict],
                         device: torch.device) -> List[InstanceData]:
        """Targets in the predictions' frames: ``bboxes`` (xyxy canvas px), ``norm_bboxes``,
        ``keypoints [n, K, 3]`` (x, y canvas px, v), ``norm_keypoints [n, K, 2]``."""
        factors = canvas_box_factors(batch_img_metas, device)
        gts = []
        for b, target in enumerate(targets):
            if 'keypoints' not in target and len(target):
                raise ValueError(f'UniPoseRefKeypointHead: targets[{b}] has no `keypoints` '
                                 f'field (gt_instances of sample {b} lack keypoints for its '
                                 f'keypoint-unit <REF>s)')
            bboxes = torch.as_tensor(target.bboxes, dtype=torch.float32,
                                     device=device).reshape(-1, 4)
            keypoints = torch.as_tensor(target.keypoints, dtype=torch.float32, device=device)
            keypoints = keypoints.reshape(-1, self.num_keypoints, 3)
            gts.append(InstanceData(
                bboxes=bboxes, norm_bboxes=bbox_xyxy_to_cxcywh(bboxes) / factors[b],
                keypoints=keypoints, norm_keypoints=keypoints[..., :2] / factors[b, :2],
                group_ids=target.group_ids.to(device)))
        return gts

    def loss_by_feat(self, queries: Tensor, query_mask: Tensor, group_ids: Tensor,
                     pyramid: Sequence[Tensor], targets: Sequence[InstanceData],
                     batch_img_metas: Sequence[dict]) -> Dict[str, Tensor]:
        """Box and keypoint losses of the valid queries, matched to their targets inside each
        group (arguments as :meth:`RefUnitHead.loss_by_feat`)."""
        if not bool(query_mask.any()):
            return self.empty_loss(queries, pyramid, batch_img_metas)
        outputs, aux = self.forward_with_aux(queries, query_mask, pyramid, batch_img_metas)
        gts = self.matching_targets(targets, batch_img_metas, outputs.device)
        last = self.layer_predictions(outputs[-1], query_mask, batch_img_metas)
        matches = self.assigner.assign_batch(
            last, gts, [group_ids[b][m] for b, m in enumerate(query_mask)],
            [gt.group_ids for gt in gts],
            [dict(meta, img_shape=meta['pad_shape']) for meta in batch_img_metas])
        losses = self.keypoint_losses(last, gts, matches)
        if self.aux_loss:
            for i in range(self.num_keypoint_layers - 1):
                preds = self.layer_predictions(outputs[i], query_mask, batch_img_metas)
                losses.update({f'd{i}.{name}': value for name, value in
                               self.keypoint_losses(preds, gts, matches).items()})
            for i, boxes in enumerate(aux['instance_boxes']):
                preds = self.layer_predictions(boxes, query_mask, batch_img_metas)
                losses.update({f'inst{i}.{name}': value for name, value in
                               self.box_losses(preds, gts, matches).items()})
        return losses

    def box_losses(self, preds: Sequence[InstanceData], gts: Sequence[InstanceData],
                   matches: Sequence[Tuple[Tensor, Tensor]]) -> Dict[str, Tensor]:
        """L1 (normalised cxcywh) and GIoU (xyxy px) over the matched pairs of the batch."""
        pred_norm, pred_px = (torch.cat([p[key][pi] for p, (pi, _) in zip(preds, matches)])
                              for key in ('norm_bboxes', 'bboxes'))
        gt_norm, gt_px = (torch.cat([g[key][gi] for g, (_, gi) in zip(gts, matches)])
                          for key in ('norm_bboxes', 'bboxes'))
        num_matched = max(len(pred_norm), 1)
        return dict(loss_bbox=self.loss_bbox(pred_norm, gt_norm, avg_factor=num_matched),
                    loss_iou=self.loss_iou(pred_px, gt_px, avg_factor=num_matched))

    def keypoint_losses(self, preds: Sequence[InstanceData], gts: Sequence[InstanceData],
                        matches: Sequence[Tuple[Tensor, Tensor]]) -> Dict[str, Tensor]:
        """Box, keypoint L1, OKS and visibility losses over the matched pairs of the batch."""
        losses = self.box_losses(preds, gts, matches)
        losses.update(matched_keypoint_losses(self.loss_keypoint, self.loss_oks,
                                              self.loss_visibility, preds, gts, matches))
        return losses

    # ------------------------------------------------------------------------------ predict
    def predict_by_feat(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                        batch_img_metas: Sequence[dict]) -> List[InstanceData]:
        """The last keypoint layer's boxes and keypoints of the valid queries.

        Returns:
            list: per sample ``InstanceData``, one row per valid query in query order:
            ``bboxes [n, 4]`` xyxy canvas px clipped to the canvas, ``scores [n]`` (1.0: there
            is no class branch, as ``RefKeypointHead``), ``keypoints [n, K, 3]`` (x, y canvas px
            clipped to the canvas, visibility probability).
        """
        outputs = self(queries, query_mask, pyramid, batch_img_metas)[-1]
        factors = canvas_box_factors(batch_img_metas, queries.device)
        results = []
        for b, pred in enumerate(self.layer_predictions(outputs, query_mask, batch_img_metas)):
            bboxes = torch.minimum(pred.bboxes.clamp(min=0), factors[b])
            xy = torch.minimum(pred.keypoints.clamp(min=0), factors[b, :2])
            keypoints = torch.cat([xy, pred.visibility.sigmoid()[..., None]], -1)
            results.append(InstanceData(bboxes=bboxes, scores=bboxes.new_ones(len(bboxes)),
                                        keypoints=keypoints))
        return results

    def rescale(self, pred: InstanceData, img_meta: dict) -> InstanceData:
        """``bboxes`` and keypoint ``x, y`` in original pixels."""
        pred.bboxes = boxes_to_original(pred.bboxes, img_meta)
        pred.keypoints = points_to_original(pred.keypoints, img_meta)
        return pred
