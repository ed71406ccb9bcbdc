"""``GroundingDINORefBoxHead``: Grounding DINO's encoder and decoder (MMDetection's modules) as
REF-VLM's box unit (paper App. C.2, D: "Stage3-gDINO").

Grounding DINO reads an image and a text; here the text is the sample's ``<REF>`` states (each
one carries its phrase: the LLM wrote it after ``<Phrase>...</Phrase>``), mapped to the
decoder width in place of BERT's token features. The feature enhancer (encoder) fuses the image
with these "text tokens"; each ``<REF>`` then picks its anchor among the enhanced image tokens
(the most similar one, Grounding DINO's language-guided query selection with one query per
token) and the decoder refines that anchor box layer by layer, its query being the ``<REF>``'s
enhanced text feature. Boxes come out in the fields and frames of ``RefBoxHead``.
"""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.detectors.deformable_detr import DeformableDETR
from mmdet.models.layers import SinePositionalEncoding, inverse_sigmoid
from mmdet.models.layers.transformer.grounding_dino_layers import (
    GroundingDinoTransformerDecoder, GroundingDinoTransformerEncoder)
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_xyxy_to_cxcywh
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmrefvlm.models.heads import RefUnitHead, query_self_attn_mask
from mmrefvlm.models.heads.canvas import (boxes_to_original, canvas_box_factors,
                                          canvas_padding_masks, valid_pixel_mask)
from mmrefvlm.models.heads.ref_decoder_head import (DETR_BOX_COSTS, DETR_LOSS_BBOX,
                                                    DETR_LOSS_IOU)
from mmrefvlm.registry import MODELS, TASK_UTILS
from .checkpoint import load_gdino_state

# Grounding DINO Swin-T (MMDetection's grounding_dino_swin-t_pretrain_obj365_goldg_cap4m.py,
# the released `groundingdino_swint_ogc`). The encoder and decoder are 256 wide whatever the
# variant: MMDetection's text and query position encodings are fixed at that width.
GDINO_SWIN_T_BACKBONE = dict(
    type='SwinTransformer', embed_dims=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
    window_size=7, mlp_ratio=4, qkv_bias=True, qk_scale=None, drop_rate=0.,
    attn_drop_rate=0., drop_path_rate=0.2, patch_norm=True, out_indices=(1, 2, 3),
    with_cp=False, convert_weights=False)
GDINO_NECK = dict(type='ChannelMapper', in_channels=[192, 384, 768], kernel_size=1,
                  out_channels=256, act_cfg=None, bias=True,
                  norm_cfg=dict(type='GN', num_groups=32), num_outs=4)
GDINO_ENCODER = dict(
    num_layers=6,
    layer_cfg=dict(self_attn_cfg=dict(embed_dims=256, num_levels=4, dropout=0.0),
                   ffn_cfg=dict(embed_dims=256, feedforward_channels=2048, ffn_drop=0.0)),
    text_layer_cfg=dict(self_attn_cfg=dict(num_heads=4, embed_dims=256, dropout=0.0),
                        ffn_cfg=dict(embed_dims=256, feedforward_channels=1024, ffn_drop=0.0)),
    fusion_layer_cfg=dict(v_dim=256, l_dim=256, embed_dim=1024, num_heads=4, init_values=1e-4))
GDINO_DECODER = dict(
    num_layers=6, return_intermediate=True,
    layer_cfg=dict(self_attn_cfg=dict(embed_dims=256, num_heads=8, dropout=0.0),
                   cross_attn_text_cfg=dict(embed_dims=256, num_heads=8, dropout=0.0),
                   cross_attn_cfg=dict(embed_dims=256, num_heads=8, dropout=0.0),
                   ffn_cfg=dict(embed_dims=256, feedforward_channels=2048, ffn_drop=0.0)),
    post_norm_cfg=None)
GDINO_POSITIONAL_ENCODING = dict(num_feats=128, normalize=True, offset=0.0, temperature=20)
# Grounding DINO's pixel normalisation (ImageNet, RGB 0-255)
GDINO_PIXEL_MEAN = (123.675, 116.28, 103.53)
GDINO_PIXEL_STD = (58.395, 57.12, 57.375)


def _reg_branch(dims: int) -> nn.Sequential:
    """Grounding DINO's box branch (two hidden layers, cxcywh deltas)."""
    return nn.Sequential(nn.Linear(dims, dims), nn.ReLU(), nn.Linear(dims, dims), nn.ReLU(),
                         nn.Linear(dims, 4))


@MODELS.register_module()
class GroundingDINORefBoxHead(RefUnitHead):
    """Grounding DINO's feature enhancer and decoder on the ``<REF>`` queries.

    The canvas is renormalised from ``image_mean``/``image_std`` to Grounding DINO's, its
    padding zeroed, resized to ``image_size`` and encoded by the frozen backbone and neck
    (Swin-T + ChannelMapper, four levels). ``ref_text_map`` maps each ``<REF>`` state to a
    256-d "text token"; the encoder fuses image and tokens; each token selects the enhanced
    image token of highest dot product (after ``memory_trans_fc``/``norm``) as its anchor,
    whose proposal box ``reg_branches[-1]`` refines (DINO's two-stage anchor, detached for the
    decoder); the decoder (padded queries hidden from self-attention) refines it with
    ``reg_branches[l]`` at layer ``l``.

    Losses, after matching inside each TRP group (box L1 + GIoU costs): ``loss_bbox`` (L1 on
    normalised cxcywh) and ``loss_iou`` (GIoU), on the last layer, ``d{l}.*`` on the others and
    ``enc.*`` on the anchors, as DINO supervises its selected proposals.

    Args:
        in_channels: LLM hidden width.
        pyramid_channels: the tower's pyramid channels (unused: the head reads its own).
        backbone, neck: MMDetection configs of Grounding DINO's image backbone and neck.
        encoder, decoder: ``GroundingDinoTransformerEncoder`` / ``Decoder`` arguments.
        positional_encoding: ``SinePositionalEncoding`` arguments.
        image_size: side of the square the canvas is resized to for the backbone.
        image_mean, image_std: per-channel normalisation of the images the head receives (the
            data preprocessor's, RGB 0-255).
        gdino_checkpoint: local path of Grounding DINO's weights in MMDetection's layout (e.g.
            ``groundingdino_swint_ogc_mmdet-822d7e9d.pth``), loaded by :meth:`init_weights`;
            ``None``: random init.
        assigner: group assigner config (costs read ``bboxes`` xyxy canvas px).
        loss_bbox, loss_iou: MMDet L1 / GIoU loss configs.
        init_cfg: MMEngine init config.
    """

    target_field = 'bboxes'
    loss_names = ('loss_bbox', 'loss_iou')
    extra_loss_names: Tuple[str, ...] = ()

    def __init__(self,
                 in_channels: int,
                 pyramid_channels: Sequence[int],
                 backbone: dict = GDINO_SWIN_T_BACKBONE,
                 neck: dict = GDINO_NECK,
                 encoder: dict = GDINO_ENCODER,
                 decoder: dict = GDINO_DECODER,
                 positional_encoding: dict = GDINO_POSITIONAL_ENCODING,
                 image_size: int = 800,
                 image_mean: Sequence[float] = GDINO_PIXEL_MEAN,
                 image_std: Sequence[float] = GDINO_PIXEL_STD,
                 gdino_checkpoint: Optional[str] = None,
                 assigner: dict = dict(type='GroupHungarianAssigner', match_costs=DETR_BOX_COSTS),
                 loss_bbox: dict = DETR_LOSS_BBOX,
                 loss_iou: dict = DETR_LOSS_IOU,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        # Grounding DINO's modules under ``gdino.``, named as in MMDetection's GroundingDINO:
        # keys of their own, whatever the replaced head's were (the stage checkpoint the
        # model starts from loads around them)
        self.gdino = nn.Module()
        self.gdino.backbone = MODELS.build(backbone)
        self.gdino.neck = MODELS.build(neck)
        for frozen in (self.gdino.backbone, self.gdino.neck):
            frozen.requires_grad_(False).eval()
        self.positional_encoding = SinePositionalEncoding(**positional_encoding)
        # MMDetection's layers read their sub-configs by attribute
        self.gdino.encoder = GroundingDinoTransformerEncoder(**ConfigDict(copy.deepcopy(encoder)))
        self.gdino.decoder = GroundingDinoTransformerDecoder(**ConfigDict(copy.deepcopy(decoder)))
        self.embed_dims = self.gdino.encoder.embed_dims
        self.num_layers = self.gdino.decoder.num_layers
        num_levels = encoder['layer_cfg']['self_attn_cfg']['num_levels']
        self.gdino.level_embed = nn.Parameter(torch.zeros(num_levels, self.embed_dims))
        self.gdino.memory_trans_fc = nn.Linear(self.embed_dims, self.embed_dims)
        self.gdino.memory_trans_norm = nn.LayerNorm(self.embed_dims)
        self.gdino.reg_branches = nn.ModuleList(
            [_reg_branch(self.embed_dims) for _ in range(self.num_layers + 1)])
        self.ref_text_map = nn.Linear(in_channels, self.embed_dims)
        self.image_size = image_size
        scale = torch.tensor(image_std) / torch.tensor(GDINO_PIXEL_STD)
        shift = (torch.tensor(image_mean) - torch.tensor(GDINO_PIXEL_MEAN)) / torch.tensor(
            GDINO_PIXEL_STD)
        self.register_buffer('renorm_scale', scale.view(1, 3, 1, 1), persistent=False)
        self.register_buffer('renorm_shift', shift.view(1, 3, 1, 1), persistent=False)
        self.gdino_checkpoint = gdino_checkpoint
        self.assigner = TASK_UTILS.build(assigner)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.loss_iou = MODELS.build(loss_iou)

    def train(self, mode: bool = True) -> 'GroundingDINORefBoxHead':
        """Set train/eval mode; the frozen backbone and neck stay in eval mode."""
        super().train(mode)
        self.gdino.backbone.eval()
        self.gdino.neck.eval()
        return self

    def init_weights(self) -> None:
        """MMEngine initialisation (Grounding DINO's: deformable attention's own, the level
        embedding normal, the last box layer zero), then ``gdino_checkpoint``."""
        super().init_weights()
        nn.init.normal_(self.gdino.level_embed)
        for branch in self.gdino.reg_branches:
            nn.init.constant_(branch[-1].weight, 0.0)
            nn.init.constant_(branch[-1].bias, 0.0)
        if self.gdino_checkpoint is not None:
            load_gdino_state(self, self.gdino_checkpoint)

    # ----------------------------------------------------------------------------- features
    def image_features(self, images: Optional[Tensor], pyramid: Sequence[Tensor],
                       batch_img_metas: Sequence[dict]) -> Tuple[Tensor, ...]:
        """Grounding DINO's multi-level features of the canvas: per level ``[B, 256, h, w]``
        (``images``: ``[B, 3, S, S]`` normalised by ``image_mean``/``image_std``)."""
        if images is None:
            raise ValueError('GroundingDINORefBoxHead encodes the images itself: call its '
                             'loss/predict with images=inputs["images"] (REFVLM does)')
        with torch.no_grad():
            valid = valid_pixel_mask(batch_img_metas, tuple(images.shape[-2:]), images.device)
            inputs = (images.float() * self.renorm_scale + self.renorm_shift) * valid[:, None]
            inputs = F.interpolate(inputs, size=(self.image_size, self.image_size),
                                   mode='bilinear', align_corners=False)
            dtype = self.gdino.level_embed.dtype
            return tuple(self.gdino.neck(self.gdino.backbone(inputs.to(dtype))))

    # ------------------------------------------------------------------------------ forward
    def forward(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                batch_img_metas: Sequence[dict]) -> Tensor:
        """Boxes ``[num_layers, B, Q, 4]`` cxcywh normalised by the canvas."""
        return self.forward_with_aux(queries, query_mask, pyramid, batch_img_metas)[0]

    def forward_with_aux(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                         batch_img_metas: Sequence[dict]) -> Tuple[Tensor, dict]:
        """Per-layer boxes and ``dict(anchors=[B, Q, 4])``, the selected proposals (cxcywh
        normalised by the canvas, in the graph).

        Args:
            queries: ``[B, Q, C_llm]``; query_mask: ``[B, Q]`` bool; pyramid: the levels of
                :meth:`image_features`; batch_img_metas: per sample meta.
        """
        boxes, decoded = self.decode(queries, query_mask, pyramid, batch_img_metas)
        return boxes, dict(anchors=decoded['anchors'])

    def decode(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
               batch_img_metas: Sequence[dict]) -> Tuple[Tensor, dict]:
        """Encoder, anchor selection and decoder.

        Returns:
            tuple: boxes ``[num_layers, B, Q, 4]`` (cxcywh normalised by the canvas) and
            ``dict(anchors [B, Q, 4], hidden [num_layers, B, Q, C], memory [B, N, C],
            memory_mask [B, N], spatial_shapes, level_start_index, valid_ratios)``.
        """
        feat, feat_pos, feat_mask, shapes, starts, ratios = self.flatten_levels(
            pyramid, batch_img_metas)
        text = self.ref_text_map(queries).to(feat.dtype)
        num_queries = query_mask.shape[1]
        memory, memory_text = self.gdino.encoder(
            query=feat, query_pos=feat_pos, key_padding_mask=feat_mask, spatial_shapes=shapes,
            level_start_index=starts, valid_ratios=ratios, memory_text=text,
            text_attention_mask=~query_mask,
            position_ids=torch.zeros_like(query_mask, dtype=torch.long),
            text_self_attention_masks=~query_self_attn_mask(query_mask, 1).view(
                -1, num_queries, num_queries))
        output_memory, proposals = DeformableDETR.gen_encoder_output_proposals(
            self.gdino, memory, feat_mask, shapes)
        scores = torch.einsum('bnc,bqc->bqn', output_memory, memory_text)
        scores = scores.masked_fill(feat_mask[:, None], float('-inf'))
        picked = scores.argmax(-1)  # [B, Q]: each <REF>'s anchor token
        anchor_unact = torch.gather(
            self.gdino.reg_branches[self.num_layers](output_memory) + proposals, 1,
            picked[..., None].expand(-1, -1, 4))
        hidden, references = self.gdino.decoder(
            query=memory_text, value=memory, key_padding_mask=feat_mask,
            self_attn_mask=query_self_attn_mask(query_mask, self.gdino.decoder.layers[0].self_attn.
                                                num_heads),
            reference_points=anchor_unact.detach().sigmoid(), spatial_shapes=shapes,
            level_start_index=starts, valid_ratios=ratios, reg_branches=self.gdino.reg_branches,
            memory_text=memory_text, text_attention_mask=~query_mask)
        boxes = torch.stack([
            (self.gdino.reg_branches[layer](hidden[layer]) + inverse_sigmoid(references[layer])
             ).sigmoid() for layer in range(self.num_layers)])
        return boxes, dict(anchors=anchor_unact.sigmoid(), hidden=hidden, memory=memory,
                           memory_mask=feat_mask, spatial_shapes=shapes, level_start_index=starts,
                           valid_ratios=ratios)

    def flatten_levels(self, levels: Sequence[Tensor], batch_img_metas: Sequence[dict]):
        """Deformable DETR's encoder inputs from the levels, canvas padding masked.

        Returns:
            tuple: ``feat``, ``feat_pos [B, N, C]``, ``feat_mask [B, N]`` (True on padding),
            ``spatial_shapes [L, 2]``, ``level_start_index [L]``, ``valid_ratios [B, L, 2]``.
        """
        masks = canvas_padding_masks(batch_img_metas, [tuple(f.shape[-2:]) for f in levels],
                                     levels[0].device)
        feats, positions, flat_masks = [], [], []
        for level, (feat, mask) in enumerate(zip(levels, masks)):
            positions.append((self.positional_encoding(mask).to(feat.dtype).flatten(2)
                              + self.gdino.level_embed[level].view(1, -1, 1)).transpose(1, 2))
            feats.append(feat.flatten(2).transpose(1, 2))
            flat_masks.append(mask.flatten(1))
        shapes = torch.tensor([f.shape[-2:] for f in levels], dtype=torch.long,
                              device=levels[0].device)
        starts = torch.cat([shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]])
        ratios = torch.stack([DeformableDETR.get_valid_ratio(m) for m in masks], 1)
        return (torch.cat(feats, 1), torch.cat(positions, 1), torch.cat(flat_masks, 1), shapes,
                starts, ratios)

    # --------------------------------------------------------------------------------- loss
    def loss_keys(self) -> List[str]:
        """``loss_*`` of the last layer, ``d{l}.loss_*`` of the others, ``enc.loss_*``."""
        prefixes = [''] + [f'd{layer}.' for layer in range(self.num_layers - 1)] + ['enc.']
        return [prefix + name for prefix in prefixes for name in self.loss_names] + list(
            self.extra_loss_names)

    def loss_by_feat(self, queries: Tensor, query_mask: Tensor, group_ids: Tensor,
                     pyramid: Sequence[Tensor], targets: Sequence[InstanceData],
                     batch_img_metas: Sequence[dict]) -> Dict[str, Tensor]:
        """Box losses of every decoder layer and of the anchors, each matched to the targets
        inside the groups (arguments as :meth:`RefUnitHead.loss_by_feat`)."""
        if not bool(query_mask.any()):
            return self.empty_loss(queries, pyramid, batch_img_metas)
        boxes, aux = self.forward_with_aux(queries, query_mask, pyramid, batch_img_metas)
        factors = canvas_box_factors(batch_img_metas, boxes.device)
        gts = self.matching_targets(targets, batch_img_metas, boxes.device)
        pred_groups = [group_ids[b][m] for b, m in enumerate(query_mask)]
        stages = {'': boxes[-1], 'enc.': aux['anchors']}
        stages.update({f'd{layer}.': boxes[layer] for layer in range(self.num_layers - 1)})
        losses = {}
        for prefix, stage in stages.items():
            preds = [InstanceData(bboxes=bbox_cxcywh_to_xyxy(stage[b][m].float()) * factors[b])
                     for b, m in enumerate(query_mask)]
            matches = self.assigner.assign_batch(
                preds, gts, pred_groups, [g.group_ids for g in gts],
                [dict(meta, img_shape=meta['pad_shape']) for meta in batch_img_metas])
            losses.update({prefix + name: value for name, value in self.stage_loss(
                preds, gts, matches, factors).items()})
            if prefix == '':
                losses.update(self.extra_losses(aux, query_mask, gts, matches, batch_img_metas))
        return losses

    def matching_targets(self, targets: Sequence[InstanceData], batch_img_metas: Sequence[dict],
                         device: torch.device) -> List[InstanceData]:
        """Per sample ``bboxes [n, 4]`` (xyxy canvas px) and ``group_ids``."""
        return [InstanceData(bboxes=torch.as_tensor(t.bboxes, dtype=torch.float32,
                                                    device=device).reshape(-1, 4),
                             group_ids=t.group_ids.to(device)) for t in targets]

    def stage_loss(self, preds: Sequence[InstanceData], gts: Sequence[InstanceData],
                   matches: Sequence[Tuple[Tensor, Tensor]], factors: Tensor) -> Dict[str, Tensor]:
        """L1 (normalised cxcywh) and GIoU (xyxy px) over the matched pairs of the batch."""
        pred_px = torch.cat([p.bboxes[pi] for p, (pi, _) in zip(preds, matches)])
        gt_px = torch.cat([g.bboxes[gi] for g, (_, gi) in zip(gts, matches)])
        pred_factors = torch.cat([factors[b].expand(len(pi), -1)
                                  for b, (pi, _) in enumerate(matches)])
        num = max(len(pred_px), 1)
        return dict(loss_bbox=self.loss_bbox(bbox_xyxy_to_cxcywh(pred_px) / pred_factors,
                                             bbox_xyxy_to_cxcywh(gt_px) / pred_factors,
                                             avg_factor=num),
                    loss_iou=self.loss_iou(pred_px, gt_px, avg_factor=num))

    def extra_losses(self, aux: dict, query_mask: Tensor, gts: Sequence[InstanceData],
                     matches: Sequence[Tuple[Tensor, Tensor]],
                     batch_img_metas: Sequence[dict]) -> Dict[str, Tensor]:
        """Losses of what a subclass predicts beside the boxes, on the last layer's matching
        (none here)."""
        return {}

    # ------------------------------------------------------------------------------ predict
    def predict_by_feat(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                        batch_img_metas: Sequence[dict]) -> List[InstanceData]:
        """Per sample, one row per valid query: ``bboxes [n, 4]`` xyxy canvas px clipped to the
        canvas and ``scores [n]`` (1.0: one box per ``<REF>``, no class branch)."""
        return self.boxes_on_canvas(self(queries, query_mask, pyramid, batch_img_metas)[-1],
                                    query_mask, batch_img_metas)

    @staticmethod
    def boxes_on_canvas(boxes: Tensor, query_mask: Tensor,
                        batch_img_metas: Sequence[dict]) -> List[InstanceData]:
        """``boxes [B, Q, 4]`` (cxcywh, canvas-normalised) of the valid queries as xyxy canvas
        px clipped to the canvas, with ``scores`` 1.0."""
        factors = canvas_box_factors(batch_img_metas, boxes.device)
        results = []
        for b in range(len(batch_img_metas)):
            bboxes = bbox_cxcywh_to_xyxy(boxes[b][query_mask[b]].float()) * factors[b]
            bboxes = torch.minimum(bboxes.clamp(min=0), factors[b])
            results.append(InstanceData(bboxes=bboxes, scores=bboxes.new_ones(len(bboxes))))
        return results

    def rescale(self, pred: InstanceData, img_meta: dict) -> InstanceData:
        """``bboxes`` in original pixels."""
        pred.bboxes = boxes_to_original(pred.bboxes, img_meta)
        return pred
