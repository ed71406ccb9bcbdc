"""``RefMaskHead``: the MaskFormer-style mask decoder of REF-VLM (paper §4.3), without a class
branch — each ``<REF>`` query is one mask of its phrase."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.layers import MLP
from mmdet.structures.mask import mask2bbox
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmrefvlm.registry import MODELS
from .canvas import valid_pixel_mask
from .locator import LocatedDecodingMixin, ReferenceLocator
from .pyramid_fusion import memory_coordinates
from .ref_decoder_head import RefDecoderHead

# Logit given to canvas-padding pixels: sigmoid() is exactly 0 in fp32/bf16, so padding adds
# nothing to the dice terms or the match costs, and torch.where stops its gradient.
_PADDING_LOGIT = -1e4


def resize_masks(masks: Tensor, size: Tuple[int, int]) -> Tensor:
    """Resize ``[n, H, W]`` 0/1 masks to ``size`` (area when shrinking, bilinear when growing)
    and threshold at 0.5.

    Returns:
        Tensor: ``[n, h, w]`` float 0/1.
    """
    if masks.shape[0] == 0:
        return masks.new_zeros((0, *size), dtype=torch.float32)
    masks = masks.float()[:, None]
    if size[0] <= masks.shape[-2]:
        resized = F.interpolate(masks, size=size, mode='area')
    else:
        resized = F.interpolate(masks, size=size, mode='bilinear', align_corners=False)
    return (resized[:, 0] >= 0.5).float()


@MODELS.register_module()
class RefMaskHead(LocatedDecodingMixin, RefDecoderHead):
    """Mask decoder: MMDet's FPN ``PixelDecoder`` gives per-pixel embeddings at the finest
    pyramid stride; the routed queries run through the DETR decoder over the fused pyramid; a mask
    embedding MLP · pixel embeddings gives one mask logit map per query and layer.

    Losses are computed at the mask-feature resolution (stride ``s_0``, e.g. 4): targets are
    area-downsampled from the canvas and thresholded at 0.5; pixels outside ``img_shape`` (canvas
    padding) are excluded. MMDet sigmoid ``FocalLoss`` (mean over the valid pixels of the matched
    masks) and ``DiceLoss`` (mean over the matched masks); matching with ``FocalLossCost``
    (``binary_input``) + ``DiceCost`` inside groups. Default weights follow MaskFormer.

    Args:
        in_channels: LLM hidden width.
        pyramid_channels: channels of each pyramid level (strides ascending).
        embed_dims, num_layers, num_heads, feedforward_channels, dropout, num_groups, aux_loss,
            memory_levels: see :class:`RefDecoderHead`.
        pixel_decoder: MMDet pixel decoder config, completed with ``in_channels``,
            ``feat_channels`` and ``out_channels``.
        assigner: group assigner config; its costs read ``masks`` (logits / 0-1 targets at the
            mask-feature resolution).
        loss_mask: MMDet sigmoid focal loss config.
        loss_dice: MMDet dice loss config.
        init_cfg: MMEngine init config.
        loss_locate_weight, mode_radius: see :class:`ReferenceLocator`.
        prior_margin: the located box is widened by this factor before it bounds the mask.
        prior_scale: initial slope (logits per half-side outside the widened box) of the box
            prior, learned.
    """

    loss_names = ('loss_mask', 'loss_dice')
    target_field = 'masks'  # the target it reads (REFVLM ``train_cfg.extra_units``)
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
                 pixel_decoder: dict = dict(type='PixelDecoder',
                                            norm_cfg=dict(type='GN', num_groups=32),
                                            act_cfg=dict(type='ReLU')),
                 assigner: dict = dict(
                     type='GroupHungarianAssigner',
                     match_costs=[
                         dict(type='FocalLossCost', weight=20.0, binary_input=True),
                         dict(type='DiceCost', weight=1.0, pred_act=True, naive_dice=True)
                     ]),
                 loss_mask: dict = dict(type='FocalLoss', use_sigmoid=True, loss_weight=20.0),
                 loss_dice: dict = dict(type='DiceLoss', use_sigmoid=True, activate=True,
                                        naive_dice=True, loss_weight=1.0),
                 init_cfg: Optional[dict] = None,
                 memory_levels: Optional[Sequence[int]] = None,
                 loss_locate_weight: float = 1.0,
                 mode_radius: float = 0.08,
                 prior_margin: float = 1.25,
                 prior_scale: float = 4.0) -> None:
        super().__init__(in_channels, pyramid_channels, embed_dims, num_layers, num_heads,
                         feedforward_channels, dropout, num_groups, aux_loss, assigner, init_cfg,
                         memory_levels)
        self.pixel_decoder = MODELS.build(dict(pixel_decoder, in_channels=list(pyramid_channels),
                                               feat_channels=embed_dims,
                                               out_channels=embed_dims))
        self.mask_embed = MLP(embed_dims, embed_dims, embed_dims, 3)
        self.locator = ReferenceLocator(embed_dims, mode_radius, loss_locate_weight)
        self.prior_margin = prior_margin
        self.prior_scale = nn.Parameter(torch.tensor(float(prior_scale)))
        self.loss_mask = MODELS.build(loss_mask)
        self.loss_dice = MODELS.build(loss_dice)

    def forward(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                batch_img_metas: Sequence[dict]) -> Tensor:
        """Mask logits of every query at every decoder layer.

        Args:
            queries: ``[B, Q, C_llm]``; query_mask: ``[B, Q]`` bool; pyramid: per level
            ``[B, C_i, h_i, w_i]``; batch_img_metas: per sample meta.

        Returns:
            Tensor: ``[num_layers, B, Q, h_0, w_0]`` logits on the finest pyramid grid; canvas
            padding pixels hold a large negative logit.
        """
        return self.forward_with_aux(queries, query_mask, pyramid, batch_img_metas)[0]

    def forward_with_aux(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                         batch_img_metas: Sequence[dict]) -> Tuple[Tensor, dict]:
        """Mask logits and ``dict(log_weights, token_boxes, sizes)`` of the locator."""
        mask_features, _ = self.pixel_decoder(list(pyramid), list(batch_img_metas))
        hidden, reference, aux = self.located_decode(queries, query_mask, pyramid,
                                                     batch_img_metas)
        logits = torch.einsum('lbqc,bchw->lbqhw', self.mask_embed(hidden), mask_features)
        logits = logits + self.box_prior(reference, tuple(mask_features.shape[-2:]))[None].to(
            logits.dtype)
        valid = valid_pixel_mask(batch_img_metas, tuple(mask_features.shape[-2:]),
                                 logits.device).bool()
        logits = logits.masked_fill(~valid[None, :, None], _PADDING_LOGIT)
        return logits, aux

    def box_prior(self, reference: Tensor, size: Tuple[int, int]) -> Tensor:
        """Logit bias that bounds each mask by its located box (our addition): zero inside the
        box widened by ``prior_margin``, falling by ``prior_scale`` per half-side outside, so
        the mask embedding decides the shape and the locator which instance (measured in
        docs/internals.md §9.2).

        Args:
            reference: ``[B, Q, 4]`` cxcywh normalised by the canvas (detached here).
            size: ``(h, w)`` of the mask grid.

        Returns:
            Tensor: ``[B, Q, h, w]``.
        """
        reference = reference.detach().float()
        centres = memory_coordinates([size], reference.device).reshape(*size, 2)  # [h, w, 2]
        half = reference[..., None, None, 2:] * self.prior_margin / 2  # [B, Q, 1, 1, 2]
        offset = (centres - reference[..., None, None, :2]).abs() / half.clamp(min=1e-3)
        return -self.prior_scale * (offset - 1).clamp(min=0).sum(-1)

    def layer_predictions(self, outputs: Tensor, query_mask: Tensor,
                          batch_img_metas: Sequence[dict]) -> List[List[InstanceData]]:
        """Per layer, per sample: ``masks [n, h_0, w_0]`` fp32 logits of the valid queries."""
        return [[InstanceData(masks=layer_logits[b][mask].float())
                 for b, mask in enumerate(query_mask)] for layer_logits in outputs]

    def matching_targets(self, targets: Sequence[InstanceData], outputs: Tensor,
                         batch_img_metas: Sequence[dict]) -> List[InstanceData]:
        """Targets as ``masks [n, h_0, w_0]`` 0/1 at the mask-feature resolution, zero outside
        the image, with ``bboxes`` (xyxy canvas px; from the masks when absent) and
        ``group_ids`` for the locator."""
        size = tuple(outputs.shape[-2:])
        valid = valid_pixel_mask(batch_img_metas, size, outputs.device)
        gts = []
        for b, target in enumerate(targets):
            masks = target.masks
            if hasattr(masks, 'to_tensor'):
                masks = masks.to_tensor(dtype=torch.float32, device=outputs.device)
            masks = torch.as_tensor(masks, device=outputs.device)
            if 'bboxes' in target:
                bboxes = torch.as_tensor(target.bboxes, dtype=torch.float32,
                                         device=outputs.device).reshape(-1, 4)
            else:
                image_area = valid_pixel_mask([batch_img_metas[b]], tuple(masks.shape[-2:]),
                                              outputs.device)[0]
                bboxes = mask2bbox((masks * image_area) > 0.5).float()
            gts.append(InstanceData(masks=resize_masks(masks, size) * valid[b], bboxes=bboxes,
                                    group_ids=target.group_ids.to(outputs.device)))
        return gts

    def layer_loss(self, preds: Sequence[InstanceData], gts: Sequence[InstanceData],
                   matches: Sequence[Tuple[Tensor, Tensor]],
                   batch_img_metas: Sequence[dict]) -> Dict[str, Tensor]:
        """Focal (valid pixels) and dice over the matched pairs of the batch."""
        size = tuple(preds[0].masks.shape[-2:])
        valid = valid_pixel_mask(batch_img_metas, size, preds[0].masks.device)
        pred = torch.cat([p.masks[pi] for p, (pi, _) in zip(preds, matches)])
        gt = torch.cat([g.masks[gi] for g, (_, gi) in zip(gts, matches)])
        weight = torch.cat([valid[b].expand(len(pi), -1, -1)
                            for b, (pi, _) in enumerate(matches)])
        num_matched = max(pred.shape[0], 1)
        loss_mask = self.loss_mask(pred.flatten(1), gt.flatten(1), weight=weight.flatten(1),
                                   avg_factor=weight.sum().clamp(min=1.0))
        loss_dice = self.loss_dice(pred, gt, avg_factor=num_matched)
        return dict(loss_mask=loss_mask, loss_dice=loss_dice)

    @torch.no_grad()
    def predict(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                batch_img_metas: Sequence[dict]) -> List[InstanceData]:
        """Masks of the valid queries on the canvas.

        Returns:
            list: per sample ``InstanceData`` with one row per valid query, in query order:
            ``masks [n, S, S]`` float probabilities (0 outside ``img_shape``), ``bboxes [n, 4]``
            xyxy canvas px of the mask (probability > 0.5; zeros when empty) and ``scores [n]``
            (mean probability inside that mask; 0 when empty).
        """
        results = []
        logits = self(queries, query_mask, pyramid, batch_img_metas)[-1] \
            if bool(query_mask.any()) else None
        for b, meta in enumerate(batch_img_metas):
            canvas = tuple(int(v) for v in meta['pad_shape'][:2])
            if logits is None or not bool(query_mask[b].any()):
                results.append(InstanceData(masks=queries.new_zeros((0, *canvas)),
                                            bboxes=queries.new_zeros((0, 4)),
                                            scores=queries.new_zeros(0)))
                continue
            probs = F.interpolate(logits[b][query_mask[b]][:, None].float(), size=canvas,
                                  mode='bilinear', align_corners=False)[:, 0].sigmoid()
            probs = probs * valid_pixel_mask([meta], canvas, probs.device)[0]
            binary = probs > 0.5
            scores = (probs * binary).flatten(1).sum(1) / binary.flatten(1).sum(1).clamp(min=1)
            results.append(InstanceData(masks=probs, bboxes=mask2bbox(binary), scores=scores))
        return results
