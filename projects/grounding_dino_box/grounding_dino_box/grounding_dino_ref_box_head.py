"""``GroundingDINORefBoxHead``: Grounding DINO's encoder and decoder as REF-VLM's box unit
(paper App. C.2, D: "Stage3-gDINO").

Grounding DINO fuses an image with the tokens of a text and decodes content queries, placed at
the encoder proposals that match the text best, into boxes scored against the text tokens. Here
the text tokens and the content queries both come from the ``<REF>`` states: each ``<REF>``
(whose LLM state follows its phrase) is one text token of its sample and one decoder query, at
the encoder proposal most similar to its own token. Boxes come out in ``RefBoxHead``'s fields.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.layers import MLP, inverse_sigmoid
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_overlaps, bbox_xyxy_to_cxcywh
from mmengine.structures import InstanceData
from torch import Tensor

from mmrefvlm.models.heads import RefUnitHead
from mmrefvlm.models.heads.canvas import boxes_to_original, canvas_box_factors, valid_pixel_mask
from mmrefvlm.models.heads.pretrained import Renormalise
from mmrefvlm.models.heads.ref_decoder_head import (DETR_BOX_COSTS, DETR_LOSS_BBOX,
                                                     DETR_LOSS_IOU, query_self_attn_mask)
from mmrefvlm.models.routers import RoutedQueries
from mmrefvlm.registry import MODELS, TASK_UTILS
from .checkpoint import load_gdino_state
from .modules import (GDINO_CONTRASTIVE, GDINO_DECODER, GDINO_ENCODER, GDINO_NECK,
                      GDINO_POSITIONS, GDINO_SWIN_T, GroundingDinoModules)
from .referring_text import referring_text, with_phrases

# Grounding DINO's pixel normalisation (ImageNet's, RGB, 0-255) and classification loss
GDINO_PIXEL_MEAN = (123.675, 116.28, 103.53)
GDINO_PIXEL_STD = (58.395, 57.12, 57.375)
GDINO_LOSS_CLS = dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0)


@MODELS.register_module()
class GroundingDINORefBoxHead(RefUnitHead):
    """Grounding DINO's text-image encoder and decoder on the ``<REF>`` queries.

    The canvas is renormalised from the data preprocessor's ``image_mean``/``image_std`` to
    Grounding DINO's, its padding zeroed and masked, optionally resized to ``image_size``, and
    encoded by Grounding DINO's Swin (frozen by default) and ChannelMapper. Per sample, the text
    the encoder fuses with the image is the tokens of its phrases (Grounding DINO's BERT, with
    ``text_encoder``) followed by the valid ``<REF>`` states through ``text_proj``; a query's
    positive tokens are those of its phrase and the ``<REF>`` tokens of its group. Each query
    starts at the encoder proposal whose mean contrastive logit over its positive tokens is
    highest (Grounding DINO's language-guided query selection, one proposal per query), with
    ``query_proj(<REF> state)`` as its content (in place of the learned content queries), and
    the decoder refines that box layer by layer.

    Losses, after matching inside each TRP group on the boxes: per decoder layer (``d{i}.`` on
    all but the last) ``loss_bbox`` (L1, normalised cxcywh), ``loss_iou`` (GIoU) and ``loss_cls``
    (Grounding DINO's sigmoid focal loss on the contrastive logits over the sample's tokens,
    positive on the query's positive tokens); on the selected proposals ``enc.loss_bbox``,
    ``enc.loss_iou`` and ``enc.loss_select``, a cross-entropy that teaches the selection the
    proposal that overlaps the target most. The score of a box is the mean sigmoid of its
    query's logits on its positive tokens (Grounding DINO's phrase score).

    Args:
        in_channels: LLM hidden width.
        pyramid_channels: the tower's pyramid channels (unused: the head encodes the images).
        embed_dims: Grounding DINO's width (256); every width of its transformer, neck and
            branches follows it.
        backbone, neck, encoder, decoder, contrastive_cfg, positional_encoding: Grounding
            DINO's configs (:class:`GroundingDinoModules`), Swin-T by default.
        text_encoder: ``None`` (the ``<REF>`` tokens are the whole text), or Grounding DINO's
            BERT (MMDetection's ``BertModel`` config, e.g. ``GDINO_BERT`` with a local
            ``name``): the tokens of the sample's phrases then join the text, frozen BERT, its
            ``text_feat_map`` trained.
        image_size: side the canvas is resized to before the Swin; ``None``: as it comes.
        image_mean, image_std: per-channel normalisation of the images the head receives (the
            data preprocessor's, RGB 0-255).
        gdino_checkpoint: local path of MMDetection's Grounding DINO weights, loaded by
            :meth:`init_weights`; ``None``: random init.
        freeze_backbone: keep the Swin frozen (in eval mode, no gradient).
        assigner: group assigner config; its costs read ``bboxes`` (xyxy canvas px).
        loss_cls, loss_bbox, loss_iou, loss_select: MMDet loss configs.
        init_cfg: MMEngine init config.
    """

    target_field = 'bboxes'

    def __init__(self,
                 in_channels: int,
                 pyramid_channels: Sequence[int],
                 embed_dims: int = 256,
                 backbone: dict = GDINO_SWIN_T,
                 neck: dict = GDINO_NECK,
                 encoder: dict = GDINO_ENCODER,
                 decoder: dict = GDINO_DECODER,
                 contrastive_cfg: dict = GDINO_CONTRASTIVE,
                 positional_encoding: dict = GDINO_POSITIONS,
                 text_encoder: Optional[dict] = None,
                 image_size: Optional[int] = None,
                 image_mean: Sequence[float] = GDINO_PIXEL_MEAN,
                 image_std: Sequence[float] = GDINO_PIXEL_STD,
                 gdino_checkpoint: Optional[str] = None,
                 freeze_backbone: bool = True,
                 assigner: dict = dict(type='GroupHungarianAssigner', match_costs=DETR_BOX_COSTS),
                 loss_cls: dict = GDINO_LOSS_CLS,
                 loss_bbox: dict = DETR_LOSS_BBOX,
                 loss_iou: dict = DETR_LOSS_IOU,
                 loss_select: dict = dict(type='CrossEntropyLoss', loss_weight=1.0),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        # Grounding DINO's modules under ``gdino.``: keys of their own, whatever the replaced
        # head's were (the stage checkpoint the model starts from loads around them)
        self.gdino = GroundingDinoModules(embed_dims, backbone, neck, encoder, decoder,
                                          contrastive_cfg, positional_encoding, text_encoder)
        self.freeze_backbone = freeze_backbone
        if freeze_backbone:
            self.gdino.backbone.requires_grad_(False).eval()
        self.num_layers = self.gdino.decoder.num_layers
        self.query_proj = MLP(in_channels, embed_dims, embed_dims, 2)
        self.text_proj = MLP(in_channels, embed_dims, embed_dims, 2)
        self.image_size = image_size
        self.renormalise = Renormalise(image_mean, image_std, GDINO_PIXEL_MEAN, GDINO_PIXEL_STD)
        self.gdino_checkpoint = gdino_checkpoint
        self.assigner = TASK_UTILS.build(assigner)
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.loss_iou = MODELS.build(loss_iou)
        self.loss_select = MODELS.build(loss_select)

    def train(self, mode: bool = True) -> 'GroundingDINORefBoxHead':
        """Set train/eval mode; a frozen Swin stays in eval mode."""
        super().train(mode)
        if self.freeze_backbone:
            self.gdino.backbone.eval()
        return self

    def init_weights(self) -> None:
        """MMEngine initialisation (Grounding DINO's own), then its weights from
        ``gdino_checkpoint``."""
        super().init_weights()
        if self.gdino_checkpoint is not None:
            load_gdino_state(self, self.gdino_checkpoint)

    def loss(self, queries: RoutedQueries, pyramid: Sequence[Tensor],
             data_samples: Sequence[DetDataSample],
             images: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """:meth:`RefUnitHead.loss`, the samples' phrases handed on in their meta."""
        return super().loss(queries, pyramid, with_phrases(data_samples, queries), images)

    def predict(self, queries: RoutedQueries, pyramid: Sequence[Tensor],
                data_samples: Sequence[DetDataSample], rescale: bool = True,
                images: Optional[Tensor] = None) -> List[DetDataSample]:
        """:meth:`RefUnitHead.predict`, the samples' phrases and the queries' groups handed on
        in their meta."""
        return super().predict(queries, pyramid, with_phrases(data_samples, queries, True),
                               rescale, images)

    # ----------------------------------------------------------------------------- features
    def image_features(self, images: Optional[Tensor], pyramid: Sequence[Tensor],
                       batch_img_metas: Sequence[dict]) -> Tuple[Tensor, ...]:
        """Grounding DINO's multi-scale features of the canvas.

        Args:
            images: ``[B, 3, S, S]`` normalised by ``image_mean``/``image_std``.
            pyramid: the tower's pyramid (not read).
            batch_img_metas: per sample, with ``img_shape`` and ``pad_shape``.

        Returns:
            tuple: the ChannelMapper's levels ``[B, embed_dims, h_i, w_i]``, strides 8 to 64
            of the (resized) canvas.
        """
        if images is None:
            raise ValueError('GroundingDINORefBoxHead encodes the images itself: call its '
                             'loss/predict with images=inputs["images"] (REFVLM does)')
        valid = valid_pixel_mask(batch_img_metas, tuple(images.shape[-2:]), images.device)
        gdino_input = self.renormalise(images) * valid[:, None]
        if self.image_size is not None:
            gdino_input = F.interpolate(gdino_input, size=(self.image_size, self.image_size),
                                        mode='bilinear', align_corners=False)
        gdino_input = gdino_input.to(self.gdino.level_embed.dtype)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_backbone):
            feats = self.gdino.backbone(gdino_input)
        return tuple(self.gdino.neck(feats))

    # ------------------------------------------------------------------------------ forward
    def forward(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                batch_img_metas: Sequence[dict]) -> Tensor:
        """Boxes ``[num_layers, B, Q, 4]`` of every query at every decoder layer (cxcywh
        normalised by the canvas)."""
        return self.forward_with_aux(queries, query_mask, pyramid, batch_img_metas)[0]

    def forward_with_aux(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                         batch_img_metas: Sequence[dict]) -> Tuple[Tensor, dict]:
        """Encode the image with the text (phrases and ``<REF>`` tokens), select a proposal per
        query, decode.

        Args:
            queries: ``[B, Q, C_llm]``; query_mask: ``[B, Q]`` bool; pyramid: the levels of
                :meth:`image_features`; batch_img_metas: per sample meta, with
                ``query_group_ids [Q]`` (the queries' groups; default: each its own) and
                ``group_phrases`` (read with a ``text_encoder``).

        Returns:
            tuple: boxes ``[L, B, Q, 4]`` and ``dict(logits [L, B, Q, T]`` (each query's
            contrastive logits on the sample's text tokens, -inf on padded tokens),
            ``positive [B, Q, T]`` bool, ``enc_boxes [B, Q, 4]`` (the selected proposals,
            refined by the encoder's branch), ``proposal_boxes [B, N, 4]``, ``proposal_logits
            [B, N, Q]`` (every encoder proposal's selection score, -inf where invalid)); boxes
            are cxcywh normalised by the canvas.
        """
        gdino = self.gdino
        inputs = gdino.flatten(pyramid, batch_img_metas)
        dtype = inputs['feat'].dtype
        text = self.text(queries.to(dtype), query_mask, batch_img_metas)
        memory, memory_text = gdino.encoder(
            query=inputs['feat'], query_pos=inputs['feat_pos'],
            key_padding_mask=inputs['feat_mask'], spatial_shapes=inputs['spatial_shapes'],
            level_start_index=inputs['level_start_index'], valid_ratios=inputs['valid_ratios'],
            memory_text=text['tokens'], text_attention_mask=~text['mask'],
            text_self_attention_masks=text['attention'], text_position_ids=text['positions'])
        text_mask = text['mask']
        proposals = self.select_proposals(memory, inputs, memory_text, text_mask,
                                          text['positive'])
        hidden, references = gdino.decoder(
            query=self.query_proj(queries.to(dtype)), value=memory,
            key_padding_mask=inputs['feat_mask'],
            self_attn_mask=query_self_attn_mask(query_mask,
                                                gdino.decoder.layers[0].self_attn.num_heads),
            reference_points=proposals['reference'], spatial_shapes=inputs['spatial_shapes'],
            level_start_index=inputs['level_start_index'], valid_ratios=inputs['valid_ratios'],
            reg_branches=gdino.bbox_head.reg_branches, memory_text=memory_text,
            text_attention_mask=~text_mask)
        num_tokens = text_mask.shape[1]
        boxes, logits = [], []
        for layer in range(self.num_layers):  # GroundingDINOHead.forward
            delta = gdino.bbox_head.reg_branches[layer](hidden[layer])
            boxes.append((delta + inverse_sigmoid(references[layer])).sigmoid())
            logits.append(gdino.bbox_head.cls_branches[layer](hidden[layer], memory_text,
                                                              text_mask)[..., :num_tokens])
        # Grounding DINO's boxes are normalised by the image's valid cells; REF-VLM's by the canvas
        to_canvas = inputs['valid_ratios'][:, 0].repeat(1, 2)[:, None]  # [B, 1, 4]
        return torch.stack(boxes) * to_canvas, dict(
            logits=torch.stack(logits), positive=text['positive'],
            enc_boxes=proposals['enc_boxes'] * to_canvas,
            proposal_boxes=proposals['boxes'] * to_canvas, proposal_logits=proposals['logits'])

    def text(self, queries: Tensor, query_mask: Tensor,
             batch_img_metas: Sequence[dict]) -> Dict[str, Tensor]:
        """The text Grounding DINO reads (:func:`referring_text`): the phrases' tokens (with a
        ``text_encoder``) and the ``<REF>`` tokens ``text_proj(queries)``."""
        groups = torch.stack([
            torch.as_tensor(meta['query_group_ids'], device=query_mask.device)
            if 'query_group_ids' in meta else torch.arange(query_mask.shape[1],
                                                           device=query_mask.device)
            for meta in batch_img_metas]).masked_fill(~query_mask, -1)
        phrase = None
        if self.gdino.language_model is not None:
            phrase = self.gdino.encode_phrases(
                [meta.get('group_phrases', []) for meta in batch_img_metas], queries.device)
            phrase['tokens'] = phrase['tokens'].to(queries.dtype)
        return referring_text(self.text_proj(queries), query_mask, groups, phrase)

    def select_proposals(self, memory: Tensor, inputs: Dict[str, Tensor], memory_text: Tensor,
                         text_mask: Tensor, positive: Tensor) -> Dict[str, Tensor]:
        """Grounding DINO's encoder proposals (``pre_decoder``), one per query: the one whose
        mean contrastive logit over the query's ``positive [B, Q, T]`` tokens is highest.

        Returns:
            dict: ``reference [B, Q, 4]`` (detached, sigmoid: the decoder's start),
            ``enc_boxes [B, Q, 4]`` the same boxes in the graph, ``boxes [B, N, 4]`` and
            ``logits [B, N, Q]`` the selection score of every proposal (-inf on invalid ones),
            boxes cxcywh normalised by the image's valid cells.
        """
        head = self.gdino.bbox_head
        output_memory, proposals = self.gdino.gen_encoder_output_proposals(
            memory, inputs['feat_mask'], inputs['spatial_shapes'])
        token_logits = head.cls_branches[self.num_layers](output_memory, memory_text,
                                                          text_mask)[..., :text_mask.shape[1]]
        weights = positive.to(token_logits.dtype)
        weights = weights / weights.sum(-1, keepdim=True)
        logits = token_logits.masked_fill(~text_mask[:, None], 0) @ weights.transpose(1, 2)
        coords = head.reg_branches[self.num_layers](output_memory) + proposals  # [B, N, 4]
        valid = torch.isfinite(proposals).all(-1, keepdim=True)
        logits = logits.masked_fill(~valid, float('-inf'))
        index = logits.detach().argmax(1)  # [B, Q]
        selected = coords.gather(1, index[..., None].expand(-1, -1, 4))
        return dict(reference=selected.detach().sigmoid(), enc_boxes=selected.sigmoid(),
                    boxes=coords.detach().sigmoid(), logits=logits)

    # --------------------------------------------------------------------------------- loss
    def loss_keys(self) -> List[str]:
        """``loss_cls``, ``loss_bbox``, ``loss_iou`` of every decoder layer (``d{i}.`` but the
        last), then the encoder's ``enc.loss_bbox``, ``enc.loss_iou``, ``enc.loss_select``."""
        keys = [self._layer_prefix(layer) + name for layer in range(self.num_layers)
                for name in ('loss_cls', 'loss_bbox', 'loss_iou')]
        return keys + ['enc.loss_bbox', 'enc.loss_iou', 'enc.loss_select']

    def _layer_prefix(self, layer: int) -> str:
        return '' if layer == self.num_layers - 1 else f'd{layer}.'

    def loss_by_feat(self, queries: Tensor, query_mask: Tensor, group_ids: Tensor,
                     pyramid: Sequence[Tensor], targets: Sequence[InstanceData],
                     batch_img_metas: Sequence[dict]) -> Dict[str, Tensor]:
        """Losses of the valid queries, matched to their targets inside each group, at every
        decoder layer and at the selected proposals (arguments as
        :meth:`RefUnitHead.loss_by_feat`)."""
        if not bool(query_mask.any()):
            return self.empty_loss(queries, pyramid, batch_img_metas)
        batch_img_metas = [dict(meta, query_group_ids=group_ids[b])
                           for b, meta in enumerate(batch_img_metas)]
        boxes, aux = self.forward_with_aux(queries, query_mask, pyramid, batch_img_metas)
        # the decoder layers, then the selected proposals
        per_layer = [self.box_predictions(layer_boxes, query_mask, batch_img_metas)
                     for layer_boxes in torch.cat([boxes, aux['enc_boxes'][None]])]
        gts = self.box_targets(targets, batch_img_metas, boxes.device)
        num, num_sets = len(gts), len(per_layer)
        matches = self.assigner.assign_batch(
            [pred for preds in per_layer for pred in preds], list(gts) * num_sets,
            [group_ids[b][query_mask[b]] for b in range(num)] * num_sets,
            [gt.group_ids for gt in gts] * num_sets,
            [dict(meta, img_shape=meta['pad_shape']) for meta in batch_img_metas] * num_sets)
        losses = {}
        for layer in range(self.num_layers):
            layer_matches = matches[layer * num:(layer + 1) * num]
            prefix = self._layer_prefix(layer)
            losses.update({prefix + name: value for name, value in self.box_losses(
                per_layer[layer], gts, layer_matches).items()})
            losses[prefix + 'loss_cls'] = self.contrastive_loss(
                aux['logits'][layer], aux['positive'], query_mask)
        enc_matches = matches[-num:]
        losses.update({'enc.' + name: value for name, value in self.box_losses(
            per_layer[-1], gts, enc_matches).items()})
        losses['enc.loss_select'] = self.selection_loss(aux, query_mask, gts, enc_matches,
                                                        batch_img_metas)
        return losses

    def box_predictions(self, boxes: Tensor, query_mask: Tensor,
                        batch_img_metas: Sequence[dict]) -> List[InstanceData]:
        """Per sample, ``norm_bboxes`` (cxcywh / canvas) and ``bboxes`` (xyxy canvas px) of the
        valid queries, fp32, from ``boxes [B, Q, 4]``."""
        factors = canvas_box_factors(batch_img_metas, boxes.device)
        preds = []
        for b, mask in enumerate(query_mask):
            norm = boxes[b][mask].float()
            preds.append(InstanceData(norm_bboxes=norm,
                                      bboxes=bbox_cxcywh_to_xyxy(norm) * factors[b]))
        return preds

    def box_targets(self, targets: Sequence[InstanceData], batch_img_metas: Sequence[dict],
                    device: torch.device) -> List[InstanceData]:
        """Per sample, the targets as ``bboxes`` (xyxy canvas px), ``norm_bboxes`` and
        ``group_ids``."""
        factors = canvas_box_factors(batch_img_metas, device)
        gts = []
        for b, target in enumerate(targets):
            bboxes = torch.as_tensor(target.bboxes, dtype=torch.float32,
                                     device=device).reshape(-1, 4)
            gts.append(InstanceData(bboxes=bboxes,
                                    norm_bboxes=bbox_xyxy_to_cxcywh(bboxes) / factors[b],
                                    group_ids=target.group_ids.to(device)))
        return gts

    def box_losses(self, preds: Sequence[InstanceData], gts: Sequence[InstanceData],
                   matches: Sequence[Tuple[Tensor, Tensor]]) -> Dict[str, Tensor]:
        """L1 (normalised cxcywh) and GIoU (xyxy px) over the matched pairs of the batch."""
        pred_norm = torch.cat([p.norm_bboxes[pi] for p, (pi, _) in zip(preds, matches)])
        pred_px = torch.cat([p.bboxes[pi] for p, (pi, _) in zip(preds, matches)])
        gt_norm = torch.cat([g.norm_bboxes[gi] for g, (_, gi) in zip(gts, matches)])
        gt_px = torch.cat([g.bboxes[gi] for g, (_, gi) in zip(gts, matches)])
        num_matched = max(pred_norm.shape[0], 1)
        return dict(loss_bbox=self.loss_bbox(pred_norm, gt_norm, avg_factor=num_matched),
                    loss_iou=self.loss_iou(pred_px, gt_px, avg_factor=num_matched))

    def contrastive_loss(self, logits: Tensor, positive: Tensor,
                         query_mask: Tensor) -> Tensor:
        """Grounding DINO's classification loss: the sigmoid focal loss of each valid query's
        logits ``[B, Q, T]`` on its sample's valid tokens, positive on ``positive [B, Q, T]``,
        averaged over the queries of the batch."""
        total = logits.new_zeros(()).float()
        for b, mask in enumerate(query_mask):
            tokens = torch.isfinite(logits[b, 0])
            total = total + self.loss_cls(logits[b][mask][:, tokens].float(),
                                          positive[b][mask][:, tokens].float(),
                                          reduction_override='sum')
        return total / max(int(query_mask.sum()), 1)

    def selection_loss(self, aux: dict, query_mask: Tensor, gts: Sequence[InstanceData],
                       matches: Sequence[Tuple[Tensor, Tensor]],
                       batch_img_metas: Sequence[dict]) -> Tensor:
        """Cross-entropy of each matched query's proposal logits (over the sample's valid
        proposals) against the proposal that overlaps its target most (IoU)."""
        factors = canvas_box_factors(batch_img_metas, query_mask.device)
        logits, labels = [], []
        for b, (pred_inds, gt_inds) in enumerate(matches):
            token = query_mask[b].nonzero()[:, 0][pred_inds]
            boxes = bbox_cxcywh_to_xyxy(aux['proposal_boxes'][b].float()) * factors[b]
            overlaps = bbox_overlaps(gts[b].bboxes[gt_inds], boxes)  # [m, N]
            valid = torch.isfinite(aux['proposal_logits'][b, :, 0])
            labels.append(overlaps.masked_fill(~valid, -1).argmax(1))
            logits.append(aux['proposal_logits'][b][:, token].t().float())  # [m, N]
        return self.loss_select(torch.cat(logits), torch.cat(labels),
                                avg_factor=max(sum(len(label) for label in labels), 1))

    # ------------------------------------------------------------------------------ predict
    def predict_by_feat(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                        batch_img_metas: Sequence[dict]) -> List[InstanceData]:
        """Boxes of the valid queries at the last decoder layer.

        Returns:
            list: per sample ``InstanceData`` with one row per valid query, in query order:
            ``bboxes [n, 4]`` xyxy canvas px clipped to the canvas, ``scores [n]`` the mean
            sigmoid of each query's logits on its positive tokens.
        """
        boxes, aux = self.forward_with_aux(queries, query_mask, pyramid, batch_img_metas)
        preds = self.box_predictions(boxes[-1], query_mask, batch_img_metas)
        results = []
        for b, (pred, meta) in enumerate(zip(preds, batch_img_metas)):
            height, width = meta['pad_shape'][:2]
            bboxes = pred.bboxes.clone()
            bboxes[:, 0::2] = bboxes[:, 0::2].clamp(0, width)
            bboxes[:, 1::2] = bboxes[:, 1::2].clamp(0, height)
            positive = aux['positive'][b][query_mask[b]].float()
            probs = aux['logits'][-1][b][query_mask[b]].float().sigmoid().nan_to_num(0.0)
            scores = (probs * positive).sum(-1) / positive.sum(-1)
            results.append(InstanceData(bboxes=bboxes, scores=scores))
        return results

    def rescale(self, pred: InstanceData, img_meta: dict) -> InstanceData:
        """``bboxes`` in original pixels."""
        pred.bboxes = boxes_to_original(pred.bboxes, img_meta)
        return pred

