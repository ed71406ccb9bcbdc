"""``ReferenceLocator``: where a routed query points in the fused memory, and the box read there.

Our addition to the paper's decoders (§4.3), off by default: a box, mask or keypoint head takes
one with ``locator=dict(type='ReferenceLocator')`` (the tiny config does). DETR-style decoders
learn localisation over many epochs; two dense, per-token signals learn it in a few hundred
steps (docs/experiments.md):

- pointing: one attention head over every memory token (scaled dot product plus a term linear in
  the token's canvas coordinates, so that "the leftmost ..." is one direction of the query),
  trained to put its mass inside the query's target boxes;
- reading: every token of the finest memory level regresses the box of the object under it
  (FCOS-style distances to the four sides), trained on every token inside a target box.

The reference box of a query is the read box averaged around the attention's mode; the head
decodes from there.
"""
from typing import Dict, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.structures.bbox import bbox_xyxy_to_cxcywh
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmrefvlm.registry import MODELS
from .canvas import canvas_box_factors
from .pyramid_fusion import memory_coordinates
from .ref_decoder_head import DETR_LOSS_BBOX, DETR_LOSS_IOU


@MODELS.register_module()
class ReferenceLocator(nn.Module):
    """Pointing and box reading over the fused memory of a decoder head.

    Attributes:
        mode_radius: half-side (fraction of the canvas) of the window around the attention's
            mode whose finest-level tokens give the reference box.
        loss_names: the losses of :meth:`loss`.

    Args:
        embed_dims: width of the projected queries and of the memory (the head fills it in).
        loss_bbox: MMDet L1 loss config of the token boxes (normalised xyxy).
        loss_iou: MMDet GIoU loss config of the token boxes (canvas pixels).
    """

    mode_radius = 0.08
    loss_names = ('loss_locate', 'loss_dense_bbox', 'loss_dense_iou')

    def __init__(self, embed_dims: int, loss_bbox: dict = DETR_LOSS_BBOX,
                 loss_iou: dict = DETR_LOSS_IOU) -> None:
        super().__init__()
        self.query_proj = nn.Linear(embed_dims, embed_dims)
        self.key_proj = nn.Linear(embed_dims, embed_dims)
        # makes "the leftmost ..." one direction of the query
        self.coord_proj = nn.Linear(2, embed_dims)
        self.dense_box = nn.Linear(embed_dims, 4)
        nn.init.zeros_(self.dense_box.weight)
        nn.init.constant_(self.dense_box.bias, -2.2)  # sigmoid: a tenth of the canvas per side
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

    def forward(self, query: Tensor, memory: Tensor, memory_mask: Tensor,
                sizes: Sequence[Tuple[int, int]]) -> Tuple[Tensor, Tensor, Tensor]:
        """Locate every query.

        Args:
            query: ``[B, Q, C]`` projected queries.
            memory: ``[B, N, C]`` fused memory with positions, levels in ``sizes`` order.
            memory_mask: ``[B, N]`` True on canvas padding.
            sizes: ``(h, w)`` of each level, finest first.

        Returns:
            tuple: reference boxes ``[B, Q, 4]`` cxcywh normalised by the canvas, the attention
            log-weights ``[B, Q, N]`` (fp32, ``-inf`` on padding) and the token boxes
            ``[B, h_0 * w_0, 4]`` (:meth:`token_boxes`).
        """
        coords = memory_coordinates(sizes, memory.device)  # [N, 2]
        keys = self.key_proj(memory) + self.coord_proj((coords - 0.5).to(memory.dtype))
        logits = torch.einsum('bqc,bnc->bqn', self.query_proj(query), keys)
        log_weights = (logits.float() / query.shape[-1]**0.5).masked_fill(
            memory_mask[:, None], float('-inf')).log_softmax(-1)
        # the mode's neighbourhood only: a mean over the whole image lands between candidates
        # whenever the mass is split
        count = sizes[0][0] * sizes[0][1]
        mode = coords[log_weights.argmax(-1)]  # [B, Q, 2]
        near = ((coords[None, None, :count] - mode[:, :, None]).abs() <=
                self.mode_radius).all(-1)  # [B, Q, n]
        # a window narrower than the finest grid may hold no token: then the nearest one
        nearest = (coords[None, None, :count] - mode[:, :, None]).abs().sum(-1).argmin(-1)
        near.scatter_(-1, nearest[..., None], True)
        local = log_weights[..., :count].masked_fill(~near, float('-inf')).softmax(-1)
        token_boxes = self.token_boxes(memory, sizes)
        box = (local @ token_boxes).clamp(1e-3, 1 - 1e-3)  # [B, Q, 4] xyxy
        return bbox_xyxy_to_cxcywh(box).clamp(1e-3, 1 - 1e-3), log_weights, token_boxes

    def loss(self, log_weights: Tensor, token_boxes: Tensor, sizes: Sequence[Tuple[int, int]],
             query_mask: Tensor, group_ids: Tensor, gts: Sequence[InstanceData],
             batch_img_metas: Sequence[dict]) -> Dict[str, Tensor]:
        """Pointing and reading losses.

        ``loss_locate``: for each valid query, ``-log`` of the attention mass on memory tokens
        whose centre lies inside a target box of its group (a group's queries share one phrase,
        so no matching is needed), averaged over the valid queries. ``loss_dense_bbox`` /
        ``loss_dense_iou``: every finest-level token whose centre lies inside an object's box
        regresses that box (the smallest one where boxes overlap, as in FCOS), averaged over
        those tokens. The objects are every annotated object of the image when the targets
        carry ``scene_bboxes`` (``PackREFVLMInputs(scene_boxes=True)``), else the queries'
        targets: reading a box is the same skill for a referred object and its neighbours, and
        the attention's mode often lands on a neighbour's tokens before it learns the phrase.

        Args:
            log_weights, token_boxes, sizes: from :meth:`forward`.
            query_mask: ``[B, Q]`` bool; group_ids: ``[B, Q]`` long.
            gts: per sample the valid queries' targets: ``bboxes [T, 4]`` xyxy canvas px,
                ``group_ids [T]`` and optionally the metainfo ``scene_bboxes [M, 4]`` (xyxy
                canvas px).
            batch_img_metas: per sample, ``pad_shape``.

        Returns:
            dict: ``loss_locate``, ``loss_dense_bbox``, ``loss_dense_iou`` (zeros that keep
            every parameter in the graph when nothing is supervised).
        """
        coords = memory_coordinates(sizes, log_weights.device)  # [N, 2] normalised
        factors = canvas_box_factors(batch_img_metas, log_weights.device)  # [B, 4]
        count = sizes[0][0] * sizes[0][1]
        terms, dense_pred, dense_gt, dense_scale = [], [], [], []
        for b, gt in enumerate(gts):
            boxes = gt.bboxes
            valid = query_mask[b]
            if not bool(valid.any()) or len(boxes) == 0:
                continue
            points = coords * factors[b, :2]  # [N, 2] canvas px
            inside = _inside(points, boxes)  # [T, N]
            same_group = group_ids[b][valid][:, None] == gt.group_ids[None]  # [q, T]
            region = (same_group.float() @ inside.float()) > 0  # [q, N]
            covered = region.any(-1)  # a box between token centres has no region: skipped
            terms.append(-log_weights[b][valid][covered].masked_fill(
                ~region[covered], float('-inf')).logsumexp(-1))
            scene = gt.get('scene_bboxes')
            if scene is not None and len(scene):
                boxes = torch.as_tensor(scene, dtype=boxes.dtype, device=boxes.device)
                fine = _inside(points[:count], boxes)  # [M, n]
            else:
                fine = inside[:, :count]  # [T, n]
            if bool(fine.any()):
                area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
                owner = torch.where(fine, area[:, None], float('inf')).argmin(0)  # [n]
                tokens = fine.any(0)
                dense_pred.append(token_boxes[b][tokens] * factors[b])
                dense_gt.append(boxes[owner[tokens]])
                dense_scale.append(factors[b].expand(int(tokens.sum()), 4))
        terms = torch.cat(terms) if terms else log_weights.new_zeros(0)
        # every box between the token centres: zero, not NaN
        locate = terms.mean() if len(terms) else log_weights.new_zeros(())
        zero = token_boxes.sum() * 0. + log_weights[log_weights.isfinite()].sum() * 0.
        losses = dict(loss_locate=locate + zero)
        if dense_pred:
            pred_px, gt_px = torch.cat(dense_pred), torch.cat(dense_gt)
            scale = torch.cat(dense_scale)
            num = pred_px.shape[0]
            losses['loss_dense_bbox'] = self.loss_bbox(pred_px / scale, gt_px / scale,
                                                       avg_factor=num)
            losses['loss_dense_iou'] = self.loss_iou(pred_px, gt_px, avg_factor=num)
        else:
            losses.update(loss_dense_bbox=zero, loss_dense_iou=zero)
        return losses


def _inside(points: Tensor, boxes: Tensor) -> Tensor:
    """``[T, N]`` whether each of ``points [N, 2]`` lies inside each of ``boxes [T, 4]``
    (xyxy, same frame, borders included)."""
    return ((points[None, :, 0] >= boxes[:, None, 0]) & (points[None, :, 0] <= boxes[:, None, 2]) &
            (points[None, :, 1] >= boxes[:, None, 1]) & (points[None, :, 1] <= boxes[:, None, 3]))


@MODELS.register_module()
class LocatedBoxPrior(nn.Module):
    """Logit bias that bounds each mask by its located box (our addition, for a mask head with
    a :class:`ReferenceLocator`): zero inside the box widened by :attr:`margin`, falling by a
    slope (learned by the head, :attr:`init_scale` at first) per half-side outside, so that the
    mask embedding decides the shape and the locator which instance.

    Attributes:
        margin: the located box is widened by this factor before it bounds the mask.
        init_scale: the slope the head's learned ``prior_scale`` starts from, in logits per
            half-side outside the box.
    """

    margin = 1.25
    init_scale = 4.0

    def forward(self, reference: Tensor, size: Tuple[int, int], scale: Tensor) -> Tensor:
        """The bias of every query.

        Args:
            reference: ``[B, Q, 4]`` cxcywh normalised by the canvas (detached here).
            size: ``(h, w)`` of the mask grid.
            scale: ``[]`` the slope.

        Returns:
            Tensor: ``[B, Q, h, w]``.
        """
        reference = reference.detach().float()
        centres = memory_coordinates([size], reference.device).reshape(*size, 2)  # [h, w, 2]
        half = reference[..., None, None, 2:] * self.margin / 2  # [B, Q, 1, 1, 2]
        offset = (centres - reference[..., None, None, :2]).abs() / half.clamp(min=1e-3)
        return -scale * (offset - 1).clamp(min=0).sum(-1)
