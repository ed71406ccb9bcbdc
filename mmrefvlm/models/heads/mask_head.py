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
from .canvas import boxes_to_original, maps_to_original, valid_pixel_mask
from .ref_decoder_head import RefDecoderHead
from .unit_head import PIXEL_DECODER

# Logit given to canvas-padding pixels: sigmoid() is exactly 0 in fp32/bf16, so padding adds
# nothing to the dice terms or the match costs, and torch.where stops its gradient.
_PADDING_LOGIT = -1e4
# MaskFormer's mask matching and losses (focal 20, dice 1), every mask head's defaults
MASK_ASSIGNER = dict(
    type='GroupHungarianAssigner',
    match_costs=[
        dict(type='FocalLossCost', weight=20.0, binary_input=True),
        dict(type='DiceCost', weight=1.0, pred_act=True, naive_dice=True)
    ])
MASK_LOSS = dict(type='FocalLoss', use_sigmoid=True, loss_weight=20.0)
MASK_DICE_LOSS = dict(type='DiceLoss', use_sigmoid=True, activate=True, naive_dice=True,
                      loss_weight=1.0)


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
class RefMaskHead(RefDecoderHead):
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
        pixel_decoder: MMDet pixel decoder config, completed with ``in_channels``,
            ``feat_channels`` and ``out_channels``.
        assigner: group assigner config; its costs read ``masks`` (logits / 0-1 targets at the
            mask-feature resolution).
        loss_mask: MMDet sigmoid focal loss config.
        loss_dice: MMDet dice loss config.
        locator: optional :class:`ReferenceLocator` config (our addition; ``None``: the paper).
        mask_prior: optional config of a bias on the mask logits from the located box, e.g.
            :class:`LocatedBoxPrior` (our addition; needs a ``locator``); its slope is the
            head's learned ``prior_scale``.
        **kwargs: :class:`RefDecoderHead` arguments (``decoder``, ``num_groups``, ``aux_loss``,
            ``memory_levels``, ``init_cfg``).
    """

    loss_names = ('loss_mask', 'loss_dice')
    target_field = 'masks'

    def __init__(self,
                 in_channels: int,
                 pyramid_channels: Sequence[int],
                 pixel_decoder: dict = PIXEL_DECODER,
                 assigner: dict = MASK_ASSIGNER,
                 loss_mask: dict = MASK_LOSS,
                 loss_dice: dict = MASK_DICE_LOSS,
                 locator: Optional[dict] = None,
                 mask_prior: Optional[dict] = None,
                 **kwargs) -> None:
        if mask_prior is not None and locator is None:
            raise ValueError(f'RefMaskHead: mask_prior={mask_prior} reads the located box and '
                             'needs a locator (e.g. locator=dict(type="ReferenceLocator"))')
        super().__init__(in_channels, pyramid_channels, assigner, **kwargs)
        self.pixel_decoder = MODELS.build(dict(pixel_decoder, in_channels=list(pyramid_channels),
                                               feat_channels=self.embed_dims,
                                               out_channels=self.embed_dims))
        self.mask_embed = MLP(self.embed_dims, self.embed_dims, self.embed_dims, 3)
        self.locator = self.build_locator(locator)
        self.mask_prior = None
        if mask_prior is not None:
            self.mask_prior = MODELS.build(mask_prior)
            self.prior_scale = nn.Parameter(torch.tensor(float(self.mask_prior.init_scale)))
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
        """Mask logits and what the locator's losses read (:meth:`RefDecoderHead.decode`)."""
        mask_features, _ = self.pixel_decoder(list(pyramid), list(batch_img_metas))
        hidden, reference, aux = self.decode(queries, query_mask, pyramid, batch_img_metas)
        logits = torch.einsum('lbqc,bchw->lbqhw', self.mask_embed(hidden), mask_features)
        if self.mask_prior is not None:
            logits = logits + self.mask_prior(reference, tuple(mask_features.shape[-2:]),
                                              self.prior_scale)[None].to(logits.dtype)
        valid = valid_pixel_mask(batch_img_metas, tuple(mask_features.shape[-2:]),
                                 logits.device).bool()
        logits = logits.masked_fill(~valid[None, :, None], _PADDING_LOGIT)
        return logits, aux

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
            gts.append(InstanceData(metainfo=target.metainfo,
                                    masks=resize_masks(masks, size) * valid[b], bboxes=bboxes,
                                    group_ids=target.group_ids.to(outputs.device)))
        return gts

    def layer_loss(self, preds: Sequence[InstanceData], gts: Sequence[InstanceData],
                   matches: Sequence[Tuple[Tensor, Tensor]],
                   batch_img_metas: Sequence[dict]) -> Dict[str, Tensor]:
        """Focal (valid pixels) and dice over the matched pairs of the batch."""
        size = tuple(preds[0].masks.shape[-2:])
        valid = valid_pixel_mask(batch_img_metas, size, preds[0].masks.device)
        return matched_mask_losses(self.loss_mask, self.loss_dice,
                                   *matched_masks(preds, gts, matches, valid))

    def predict_by_feat(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                        batch_img_metas: Sequence[dict]) -> List[InstanceData]:
        """Masks of the valid queries on the canvas.

        Returns:
            list: per sample ``InstanceData`` with one row per valid query, in query order:
            ``masks [n, S, S]`` float probabilities (0 outside ``img_shape``), ``bboxes [n, 4]``
            xyxy canvas px of the mask (probability > 0.5; zeros when empty) and ``scores [n]``
            (mean probability inside that mask; 0 when empty).
        """
        logits = self(queries, query_mask, pyramid, batch_img_metas)[-1]
        results = []
        for b, meta in enumerate(batch_img_metas):
            probs = canvas_probabilities(logits[b][query_mask[b]], meta)
            binary = probs > 0.5
            scores = (probs * binary).flatten(1).sum(1) / binary.flatten(1).sum(1).clamp(min=1)
            results.append(InstanceData(masks=probs, bboxes=mask2bbox(binary), scores=scores))
        return results

    def rescale(self, pred: InstanceData, img_meta: dict) -> InstanceData:
        """``masks [n, H, W]`` bool (probability > 0.5) and ``bboxes`` in original pixels."""
        pred.masks = maps_to_original(pred.masks, img_meta) > 0.5
        pred.bboxes = boxes_to_original(pred.bboxes, img_meta)
        return pred


def matched_masks(preds: Sequence[InstanceData], gts: Sequence[InstanceData],
                  matches: Sequence[Tuple[Tensor, Tensor]],
                  valid: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """The matched pairs of a batch: predicted logits ``[M, h, w]``, target masks ``[M, h, w]``
    and the weight of every pixel (``valid [B, h, w]``: 1 inside ``img_shape``)."""
    pred = torch.cat([p.masks[pi] for p, (pi, _) in zip(preds, matches)])
    gt = torch.cat([g.masks[gi] for g, (_, gi) in zip(gts, matches)])
    weight = torch.cat([valid[b].expand(len(pi), -1, -1) for b, (pi, _) in enumerate(matches)])
    return pred, gt, weight


def matched_mask_losses(loss_mask: nn.Module, loss_dice: nn.Module, pred: Tensor, gt: Tensor,
                        weight: Tensor) -> Dict[str, Tensor]:
    """Per-pixel loss over the valid pixels and dice per matched pair (:func:`matched_masks`)."""
    return dict(
        loss_mask=loss_mask(pred.flatten(1), gt.flatten(1), weight=weight.flatten(1),
                            avg_factor=weight.sum().clamp(min=1.0)),
        loss_dice=loss_dice(pred, gt, avg_factor=max(pred.shape[0], 1)))


def canvas_probabilities(logits: Tensor, meta: dict) -> Tensor:
    """Mask logits ``[n, h, w]`` of one sample as probabilities ``[n, S, S]`` on its canvas
    (``pad_shape``), 0 outside ``img_shape``."""
    canvas = tuple(int(v) for v in meta['pad_shape'][:2])
    if logits.shape[0] == 0:
        return logits.new_zeros((0, *canvas)).float()
    probs = F.interpolate(logits[:, None].float(), size=canvas, mode='bilinear',
                          align_corners=False)[:, 0].sigmoid()
    return probs * valid_pixel_mask([meta], canvas, probs.device)[0]
