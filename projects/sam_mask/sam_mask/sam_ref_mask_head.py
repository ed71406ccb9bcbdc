"""``SAMRefMaskHead``: Segment Anything's mask decoder as REF-VLM's mask unit (paper App. C.2,
D: "Stage3-SAM").

Each ``<REF>`` state becomes the sparse prompt embeddings of SAM's mask decoder (the way LISA
prompts SAM with its ``[SEG]`` state); the dense prompt is SAM's own "no mask" embedding. The
decoder reads SAM's image embedding of the canvas, computed by SAM's frozen image encoder.
Masks, boxes and scores come out in the fields and frames of ``RefMaskHead``.
"""
import copy
from functools import partial
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.layers import MLP
from mmdet.structures.mask import mask2bbox
from mmengine.structures import InstanceData
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder
from segment_anything.modeling import TwoWayTransformer
from torch import Tensor, nn

from mmrefvlm.models.heads import RefUnitHead
from mmrefvlm.models.heads.canvas import boxes_to_original, maps_to_original, valid_pixel_mask
from mmrefvlm.models.heads.mask_head import (MASK_ASSIGNER, MASK_DICE_LOSS, MASK_LOSS,
                                              canvas_probabilities, matched_mask_losses,
                                              matched_masks, resize_masks)
from mmrefvlm.models.heads.pretrained import Renormalise
from mmrefvlm.registry import MODELS, TASK_UTILS
from .checkpoint import load_sam_state

# SAM's image encoders (segment_anything.build_sam): the variant sets width, depth, heads and
# the blocks with global attention; every variant reads a 1024-px image in 16-px patches.
SAM_VIT_B = dict(embed_dim=768, depth=12, num_heads=12, global_attn_indexes=(2, 5, 8, 11))
SAM_VIT_L = dict(embed_dim=1024, depth=24, num_heads=16, global_attn_indexes=(5, 11, 17, 23))
SAM_VIT_H = dict(embed_dim=1280, depth=32, num_heads=16, global_attn_indexes=(7, 15, 23, 31))
SAM_ENCODER_DEFAULTS = dict(img_size=1024, patch_size=16, mlp_ratio=4, qkv_bias=True,
                            use_rel_pos=True, window_size=14)
# SAM's mask decoder (the same for every variant)
SAM_MASK_DECODER = dict(transformer=dict(depth=2, mlp_dim=2048, num_heads=8),
                        num_multimask_outputs=3, iou_head_depth=3, iou_head_hidden_dim=256)
# SAM's pixel normalisation (RGB, 0-255)
SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)
# Logit of canvas-padding pixels: sigmoid() is exactly 0, so padding adds nothing to the dice
# terms or the match costs.
_PADDING_LOGIT = -1e4


@MODELS.register_module()
class SAMRefMaskHead(RefUnitHead):
    """SAM's prompt encoder and mask decoder on the ``<REF>`` queries, over SAM's image features.

    The canvas (image top-left, padding bottom-right: SAM's own layout) is renormalised from the
    data preprocessor's ``image_mean``/``image_std`` to SAM's, its padding zeroed as SAM pads,
    resized to the encoder's ``img_size`` and encoded by the frozen image encoder. A query MLP
    turns each ``<REF>`` state into ``num_prompt_tokens`` sparse prompt embeddings; the mask
    decoder (single-mask output) gives one low-resolution mask (4x the embedding grid) and a
    predicted IoU per query. The prompt encoder is frozen too: only its "no mask" dense
    embedding and its positional encoding are read.

    Losses at the low-resolution grid, canvas padding excluded, after matching inside each TRP
    group (mask costs as ``RefMaskHead``): ``loss_mask`` (MMDet sigmoid focal, SAM's weight 20),
    ``loss_dice`` (weight 1) and ``loss_iou_pred``, the MSE between the predicted IoU and the
    IoU of the binarised mask with its target (SAM's IoU head; its prediction is the score).

    Args:
        in_channels: LLM hidden width.
        pyramid_channels: the tower's pyramid channels (unused: the head reads SAM's features).
        image_encoder: ``segment_anything`` ``ImageEncoderViT`` arguments, e.g. ``SAM_VIT_L``
            (completed with ``SAM_ENCODER_DEFAULTS``).
        mask_decoder: ``MaskDecoder`` arguments, ``transformer`` holding the
            ``TwoWayTransformer``'s ``depth``, ``mlp_dim`` and ``num_heads``.
        prompt_embed_dims: SAM's prompt/embedding width (256).
        mask_in_chans: hidden channels of the prompt encoder's mask input (16; its weights
            load, it is not run).
        image_mean, image_std: per-channel normalisation of the images the head receives (the
            data preprocessor's, RGB 0-255).
        sam_checkpoint: local path of SAM's weights (the official ``sam_vit_*.pth`` or a state
            dict with the same keys), loaded by :meth:`init_weights`; ``None``: random init.
        num_prompt_tokens: sparse prompt embeddings per query.
        assigner: group assigner config; its costs read ``masks`` (logits / 0-1 targets at the
            low-resolution grid).
        loss_mask, loss_dice, loss_iou_pred: MMDet loss configs.
        init_cfg: MMEngine init config.
    """

    target_field = 'masks'

    def __init__(self,
                 in_channels: int,
                 pyramid_channels: Sequence[int],
                 image_encoder: dict = SAM_VIT_L,
                 mask_decoder: dict = SAM_MASK_DECODER,
                 prompt_embed_dims: int = 256,
                 mask_in_chans: int = 16,
                 image_mean: Sequence[float] = SAM_PIXEL_MEAN,
                 image_std: Sequence[float] = SAM_PIXEL_STD,
                 sam_checkpoint: Optional[str] = None,
                 num_prompt_tokens: int = 1,
                 assigner: dict = MASK_ASSIGNER,
                 loss_mask: dict = MASK_LOSS,
                 loss_dice: dict = MASK_DICE_LOSS,
                 loss_iou_pred: dict = dict(type='MSELoss', loss_weight=1.0),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        encoder = dict(SAM_ENCODER_DEFAULTS, **image_encoder)
        self.image_size = encoder['img_size']
        grid = self.image_size // encoder['patch_size']
        # SAM's modules under ``sam.``: keys of their own, whatever the replaced head's were
        # (the stage checkpoint the model starts from loads around them)
        self.sam = nn.Module()
        self.sam.image_encoder = ImageEncoderViT(
            **encoder, out_chans=prompt_embed_dims, norm_layer=partial(nn.LayerNorm, eps=1e-6))
        self.sam.prompt_encoder = PromptEncoder(
            embed_dim=prompt_embed_dims, image_embedding_size=(grid, grid),
            input_image_size=(self.image_size, self.image_size), mask_in_chans=mask_in_chans)
        decoder = copy.deepcopy(dict(mask_decoder))
        self.sam.mask_decoder = MaskDecoder(
            transformer_dim=prompt_embed_dims,
            transformer=TwoWayTransformer(embedding_dim=prompt_embed_dims,
                                          **decoder.pop('transformer')),
            **decoder)
        for frozen in (self.sam.image_encoder, self.sam.prompt_encoder):
            frozen.requires_grad_(False).eval()
        self.num_prompt_tokens = num_prompt_tokens
        self.prompt_dims = prompt_embed_dims
        self.query_proj = MLP(in_channels, in_channels, num_prompt_tokens * prompt_embed_dims, 2)
        self.renormalise = Renormalise(image_mean, image_std, SAM_PIXEL_MEAN, SAM_PIXEL_STD)
        self.sam_checkpoint = sam_checkpoint
        self.assigner = TASK_UTILS.build(assigner)
        self.loss_mask = MODELS.build(loss_mask)
        self.loss_dice = MODELS.build(loss_dice)
        self.loss_iou_pred = MODELS.build(loss_iou_pred)

    def train(self, mode: bool = True) -> 'SAMRefMaskHead':
        """Set train/eval mode; the frozen image and prompt encoders stay in eval mode."""
        super().train(mode)
        self.sam.image_encoder.eval()
        self.sam.prompt_encoder.eval()
        return self

    def init_weights(self) -> None:
        """MMEngine initialisation, then SAM's weights from ``sam_checkpoint``."""
        super().init_weights()
        if self.sam_checkpoint is not None:
            load_sam_state(self, self.sam_checkpoint)

    # ----------------------------------------------------------------------------- features
    def image_features(self, images: Optional[Tensor], pyramid: Sequence[Tensor],
                       batch_img_metas: Sequence[dict]) -> Tuple[Tensor]:
        """SAM's image embedding of the canvas.

        Args:
            images: ``[B, 3, S, S]`` normalised by ``image_mean``/``image_std``.
            pyramid: the tower's pyramid (not read).
            batch_img_metas: per sample, with ``img_shape`` and ``pad_shape``.

        Returns:
            tuple: one level, ``[B, prompt_embed_dims, img_size / 16, img_size / 16]``.
        """
        if images is None:
            raise ValueError('SAMRefMaskHead encodes the images itself: call its loss/predict '
                             'with images=inputs["images"] (REFVLM does)')
        with torch.no_grad():
            valid = valid_pixel_mask(batch_img_metas, tuple(images.shape[-2:]), images.device)
            sam_input = self.renormalise(images) * valid[:, None]
            sam_input = F.interpolate(sam_input, size=(self.image_size, self.image_size),
                                      mode='bilinear', align_corners=False)
            dtype = self.sam.image_encoder.patch_embed.proj.weight.dtype
            return (self.sam.image_encoder(sam_input.to(dtype)), )

    # ------------------------------------------------------------------------------ forward
    def forward(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                batch_img_metas: Sequence[dict]) -> Tensor:
        """Mask logits ``[B, Q, h, w]`` (``h = 4 × embedding grid``; padded queries and canvas
        padding pixels hold a large negative logit)."""
        return self.forward_with_aux(queries, query_mask, pyramid, batch_img_metas)[0]

    def forward_with_aux(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                         batch_img_metas: Sequence[dict]) -> Tuple[Tensor, dict]:
        """Mask logits and ``dict(iou_pred=[B, Q])``, SAM's predicted IoU of each mask.

        Args:
            queries: ``[B, Q, C_llm]``; query_mask: ``[B, Q]`` bool; pyramid:
                ``(embeddings [B, D, g, g], )`` from :meth:`image_features`;
                batch_img_metas: per sample meta.
        """
        embeddings = pyramid[0]
        prompts = self.query_proj(queries).unflatten(-1, (self.num_prompt_tokens,
                                                          self.prompt_dims))
        image_pe = self.sam.prompt_encoder.get_dense_pe().to(embeddings.dtype)
        dense = self.sam.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(
            -1, -1, *embeddings.shape[-2:]).to(embeddings.dtype)
        size = (4 * embeddings.shape[-2], 4 * embeddings.shape[-1])
        logits = prompts.new_full((*query_mask.shape, *size), _PADDING_LOGIT)
        iou_pred = prompts.new_zeros(query_mask.shape)
        for b in range(len(query_mask)):
            if not bool(query_mask[b].any()):
                continue
            sparse = prompts[b][query_mask[b]].to(embeddings.dtype)
            masks, iou = self.sam.mask_decoder(embeddings[b:b + 1], image_pe, sparse,
                                           dense.expand(len(sparse), -1, -1, -1),
                                           multimask_output=False)
            logits[b, query_mask[b]] = masks[:, 0].to(logits.dtype)
            iou_pred[b, query_mask[b]] = iou[:, 0].to(iou_pred.dtype)
        valid = valid_pixel_mask(batch_img_metas, size, logits.device).bool()
        return logits.masked_fill(~valid[:, None], _PADDING_LOGIT), dict(iou_pred=iou_pred)

    # --------------------------------------------------------------------------------- loss
    def loss_keys(self) -> List[str]:
        """The three losses."""
        return ['loss_mask', 'loss_dice', 'loss_iou_pred']

    def loss_by_feat(self, queries: Tensor, query_mask: Tensor, group_ids: Tensor,
                     pyramid: Sequence[Tensor], targets: Sequence[InstanceData],
                     batch_img_metas: Sequence[dict]) -> Dict[str, Tensor]:
        """Focal, dice and IoU-prediction losses of the valid queries, matched to their targets
        inside each group (arguments as :meth:`RefUnitHead.loss_by_feat`)."""
        if not bool(query_mask.any()):
            return self.empty_loss(queries, pyramid, batch_img_metas)
        logits, aux = self.forward_with_aux(queries, query_mask, pyramid, batch_img_metas)
        size = tuple(logits.shape[-2:])
        valid = valid_pixel_mask(batch_img_metas, size, logits.device)
        preds = [InstanceData(masks=logits[b][m].float(), iou_pred=aux['iou_pred'][b][m].float())
                 for b, m in enumerate(query_mask)]
        gts = [InstanceData(masks=resize_masks(_as_tensor(t.masks, logits.device), size)
                            * valid[b]) for b, t in enumerate(targets)]
        matches = self.assigner.assign_batch(
            preds, gts, [group_ids[b][m] for b, m in enumerate(query_mask)],
            [t.group_ids.to(logits.device) for t in targets], batch_img_metas)
        pred, gt, weight = matched_masks(preds, gts, matches, valid)
        iou_pred = torch.cat([p.iou_pred[pi] for p, (pi, _) in zip(preds, matches)])
        return dict(
            **matched_mask_losses(self.loss_mask, self.loss_dice, pred, gt, weight),
            loss_iou_pred=self.loss_iou_pred(iou_pred, mask_iou(pred.detach() > 0, gt),
                                             avg_factor=max(pred.shape[0], 1)))

    # ------------------------------------------------------------------------------ predict
    def predict_by_feat(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                        batch_img_metas: Sequence[dict]) -> List[InstanceData]:
        """Masks of the valid queries on the canvas, in ``RefMaskHead.predict_by_feat``'s
        fields; ``scores [n]`` are SAM's predicted IoUs clamped to [0, 1]."""
        logits, aux = self.forward_with_aux(queries, query_mask, pyramid, batch_img_metas)
        results = []
        for b, meta in enumerate(batch_img_metas):
            probs = canvas_probabilities(logits[b][query_mask[b]], meta)
            results.append(InstanceData(
                masks=probs, bboxes=mask2bbox(probs > 0.5),
                scores=aux['iou_pred'][b][query_mask[b]].float().clamp(0, 1)))
        return results

    def rescale(self, pred: InstanceData, img_meta: dict) -> InstanceData:
        """``masks [n, H, W]`` bool (probability > 0.5) and ``bboxes`` in original pixels."""
        pred.masks = maps_to_original(pred.masks, img_meta) > 0.5
        pred.bboxes = boxes_to_original(pred.bboxes, img_meta)
        return pred


def mask_iou(pred: Tensor, gt: Tensor) -> Tensor:
    """IoU of ``[n, h, w]`` binary masks with their ``[n, h, w]`` 0/1 targets (1 when both are
    empty)."""
    pred, gt = pred.flatten(1).float(), gt.flatten(1).float()
    inter = (pred * gt).sum(1)
    union = pred.sum(1) + gt.sum(1) - inter
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def _as_tensor(masks, device: torch.device) -> Tensor:
    """``[n, H, W]`` float masks from ``BitmapMasks`` or a tensor."""
    if hasattr(masks, 'to_tensor'):
        return masks.to_tensor(dtype=torch.float32, device=device)
    return torch.as_tensor(masks, dtype=torch.float32, device=device)
