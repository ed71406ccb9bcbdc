"""``UniPoseRefKeypointHead``: a keypoint decoder in UniPose's manner (Yang et al., "UniPose:
Detecting Any Keypoints", 2023) as REF-VLM's keypoint unit (paper App. C.2, D:
"Stage3-UniPose").

UniPose is Grounding DINO with a second, keypoint decoder (ED-Pose's instance-to-keypoint
design): the instance decoder finds each prompted instance's box, then ``K`` keypoint queries
per instance, each starting from the instance's state plus a learned keypoint embedding, refine
their 2-D positions layer by layer with deformable attention over the image memory. No
installable UniPose exists (PyPI's ``unipose`` is an unrelated Unity package; IDEA-Research's
code is not packaged), so this head is built from MMDetection's layers: the instance stage is
:class:`GroundingDINORefBoxHead`, the keypoint stage MMDetection's
``DeformableDetrTransformerDecoderLayer``. The ``<REF>`` query is the prompt.
"""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.models.layers import MLP, DeformableDetrTransformerDecoderLayer, inverse_sigmoid
from mmdet.models.layers.transformer import coordinate_to_encoding
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmrefvlm.models.heads.canvas import canvas_box_factors, points_to_original
from mmrefvlm.registry import MODELS
from projects.grounding_dino_box.grounding_dino_box import GroundingDINORefBoxHead
from .checkpoint import load_head_state

# The keypoint decoder (ED-Pose / UniPose: 256 wide, deformable cross-attention over the
# encoder's four levels)
UNIPOSE_KEYPOINT_DECODER = dict(
    num_layers=2,
    layer_cfg=dict(self_attn_cfg=dict(embed_dims=256, num_heads=8, dropout=0.0),
                   cross_attn_cfg=dict(embed_dims=256, num_levels=4, dropout=0.0,
                                       batch_first=True),
                   ffn_cfg=dict(embed_dims=256, feedforward_channels=2048, ffn_drop=0.0)))


@MODELS.register_module()
class UniPoseRefKeypointHead(GroundingDINORefBoxHead):
    """Instance box, then ``K`` keypoints and their visibility, per ``<REF>`` query.

    Keypoint positions start at ``box centre + tanh(MLP(state)) · (w, h) / 2`` and are refined
    by every keypoint layer in inverse-sigmoid space; each layer's keypoint queries (one
    instance's ``K``) attend to each other, then deformably to the image memory around their
    positions (whose sine encoding is their query position).

    Losses: :class:`GroundingDINORefBoxHead`'s box losses, plus, on the last instance layer's
    matching: ``loss_keypoint`` (L1 on canvas-normalised ``(x, y)`` of labelled keypoints),
    ``loss_oks`` (``1 - OKS``, :class:`OKSLoss`) and ``loss_visibility`` (sigmoid BCE of
    ``v > 0``), with ``RefKeypointHead``'s weights.

    Args:
        in_channels, pyramid_channels: as :class:`GroundingDINORefBoxHead`.
        num_keypoints: ``K``.
        keypoint_sigmas: ``[K]`` OKS sigmas.
        keypoint_decoder: ``num_layers`` and the ``layer_cfg`` of MMDetection's
            ``DeformableDetrTransformerDecoderLayer``.
        loss_keypoint, loss_oks, loss_visibility: loss configs.
        unipose_checkpoint: local path of weights in this head's layout (its state dict, or a
            REFVLM checkpoint with them under ``heads.keypoint.``), every key required, loaded
            by :meth:`init_weights` after ``gdino_checkpoint``; ``None``: none.
        **kwargs: :class:`GroundingDINORefBoxHead` arguments (``backbone``, ``encoder``,
            ``decoder``, ``image_size``, ``gdino_checkpoint``...).
    """

    target_field = 'keypoints'
    extra_loss_names = ('loss_keypoint', 'loss_oks', 'loss_visibility')

    def __init__(self,
                 in_channels: int,
                 pyramid_channels: Sequence[int],
                 num_keypoints: int,
                 keypoint_sigmas: Sequence[float],
                 keypoint_decoder: dict = UNIPOSE_KEYPOINT_DECODER,
                 loss_keypoint: dict = dict(type='L1Loss', loss_weight=10.0),
                 loss_oks: dict = dict(type='OKSLoss', loss_weight=4.0),
                 loss_visibility: dict = dict(type='CrossEntropyLoss', use_sigmoid=True,
                                              loss_weight=1.0),
                 unipose_checkpoint: Optional[str] = None,
                 **kwargs) -> None:
        if len(keypoint_sigmas) != num_keypoints:
            raise ValueError(f'UniPoseRefKeypointHead: num_keypoints={num_keypoints} but '
                             f'{len(keypoint_sigmas)} keypoint_sigmas are given')
        super().__init__(in_channels, pyramid_channels, **kwargs)
        dims = self.embed_dims
        self.num_keypoints = num_keypoints
        self.keypoint_embed = nn.Embedding(num_keypoints, dims)
        self.keypoint_init = MLP(dims, dims, 2 * num_keypoints, 2)
        self.keypoint_layers = nn.ModuleList([
            DeformableDetrTransformerDecoderLayer(
                **ConfigDict(copy.deepcopy(keypoint_decoder['layer_cfg'])))
            for _ in range(keypoint_decoder['num_layers'])])
        self.keypoint_pos_head = MLP(dims, dims, dims, 2)
        self.keypoint_reg = nn.ModuleList([MLP(dims, dims, 2, 2) for _ in self.keypoint_layers])
        self.visibility_head = nn.Linear(dims, 1)
        self.loss_keypoint = MODELS.build(loss_keypoint)
        self.loss_oks = MODELS.build(dict(loss_oks, sigmas=list(keypoint_sigmas)))
        self.loss_visibility = MODELS.build(loss_visibility)
        self.unipose_checkpoint = unipose_checkpoint

    def init_weights(self) -> None:
        """Grounding DINO's initialisation and weights, then ``unipose_checkpoint``."""
        super().init_weights()
        if self.unipose_checkpoint is not None:
            load_head_state(self, self.unipose_checkpoint)

    def forward_with_aux(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                         batch_img_metas: Sequence[dict]) -> Tuple[Tensor, dict]:
        """Per-layer boxes ``[L, B, Q, 4]`` and ``dict(anchors, keypoints [B, Q, K, 2] (x, y
        normalised by the canvas), visibility [B, Q, K] logits)``."""
        boxes, decoded = self.decode(queries, query_mask, pyramid, batch_img_metas)
        keypoints, visibility = self.decode_keypoints(boxes[-1], decoded)
        return boxes, dict(anchors=decoded['anchors'], keypoints=keypoints,
                           visibility=visibility)

    def decode_keypoints(self, boxes: Tensor, decoded: dict) -> Tuple[Tensor, Tensor]:
        """The keypoint stage on every query (padded ones included: each instance's keypoints
        attend only to each other).

        Args:
            boxes: ``[B, Q, 4]`` the last instance layer's boxes (cxcywh, canvas-normalised).
            decoded: :meth:`decode`'s dict.

        Returns:
            tuple: keypoints ``[B, Q, K, 2]`` and visibility logits ``[B, Q, K]``.
        """
        batch, num_queries = boxes.shape[:2]
        state = decoded['hidden'][-1].flatten(0, 1)  # [B·Q, C]
        box = boxes.flatten(0, 1)
        offsets = self.keypoint_init(state).tanh().unflatten(-1, (self.num_keypoints, 2))
        points = (box[:, None, :2] + offsets * box[:, None, 2:] / 2).clamp(1e-4, 1 - 1e-4)
        query = state[:, None] + self.keypoint_embed.weight[None]  # [B·Q, K, C]
        memory = decoded['memory'].repeat_interleave(num_queries, 0)
        memory_mask = decoded['memory_mask'].repeat_interleave(num_queries, 0)
        ratios = decoded['valid_ratios'].repeat_interleave(num_queries, 0)
        for layer, reg in zip(self.keypoint_layers, self.keypoint_reg):
            query_pos = self.keypoint_pos_head(
                coordinate_to_encoding(points, num_feats=self.embed_dims // 2).to(query.dtype))
            query = layer(query=query, query_pos=query_pos, value=memory,
                          key_padding_mask=memory_mask,
                          reference_points=points[:, :, None] * ratios[:, None],
                          spatial_shapes=decoded['spatial_shapes'],
                          level_start_index=decoded['level_start_index'],
                          valid_ratios=ratios)
            points = (inverse_sigmoid(points) + reg(query)).sigmoid()
        return (points.unflatten(0, (batch, num_queries)),
                self.visibility_head(query)[..., 0].unflatten(0, (batch, num_queries)))

    def matching_targets(self, targets: Sequence[InstanceData], batch_img_metas: Sequence[dict],
                         device: torch.device) -> List[InstanceData]:
        """Boxes and group ids, plus ``keypoints [n, K, 3]`` (x, y canvas px, v)."""
        gts = super().matching_targets(targets, batch_img_metas, device)
        for b, (target, gt) in enumerate(zip(targets, gts)):
            if 'keypoints' in target:
                gt.keypoints = torch.as_tensor(target.keypoints, dtype=torch.float32,
                                               device=device).reshape(-1, self.num_keypoints, 3)
            elif len(gt) == 0:
                gt.keypoints = torch.zeros(0, self.num_keypoints, 3, device=device)
            else:
                raise ValueError(f'UniPoseRefKeypointHead: targets[{b}] has no `keypoints` '
                                 'field for its keypoint-unit <REF>s')
        return gts

    def extra_losses(self, aux: dict, query_mask: Tensor, gts: Sequence[InstanceData],
                     matches: Sequence[Tuple[Tensor, Tensor]],
                     batch_img_metas: Sequence[dict]) -> Dict[str, Tensor]:
        """Keypoint L1, OKS and visibility losses over the matched pairs of the batch."""
        factors = canvas_box_factors(batch_img_metas, query_mask.device)[:, :2]
        pred = torch.cat([aux['keypoints'][b][m][pi].float() for b, (m, (pi, _)) in
                          enumerate(zip(query_mask, matches))])
        vis = torch.cat([aux['visibility'][b][m][pi].float() for b, (m, (pi, _)) in
                         enumerate(zip(query_mask, matches))])
        gt = torch.cat([g.keypoints[gi] for g, (_, gi) in zip(gts, matches)])
        scale = torch.cat([factors[b].expand(len(pi), -1) for b, (pi, _) in enumerate(matches)])
        boxes = torch.cat([g.bboxes[gi] for g, (_, gi) in zip(gts, matches)])
        labelled = gt[..., 2] > 0
        areas = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0).prod(-1)
        weight = labelled[..., None].expand_as(pred).float()
        return dict(
            loss_keypoint=self.loss_keypoint(pred, gt[..., :2] / scale[:, None], weight=weight,
                                             avg_factor=labelled.sum().clamp(min=1).item()),
            loss_oks=self.loss_oks(pred * scale[:, None], gt[..., :2], labelled, areas),
            loss_visibility=self.loss_visibility(vis.flatten(), labelled.float().flatten(),
                                                 avg_factor=max(vis.numel(), 1)))

    def predict_by_feat(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                        batch_img_metas: Sequence[dict]) -> List[InstanceData]:
        """Per sample, one row per valid query: the box head's ``bboxes``/``scores`` and
        ``keypoints [n, K, 3]`` (x, y canvas px, visibility probability)."""
        boxes, aux = self.forward_with_aux(queries, query_mask, pyramid, batch_img_metas)
        results = self.boxes_on_canvas(boxes[-1], query_mask, batch_img_metas)
        factors = canvas_box_factors(batch_img_metas, boxes.device)[:, :2]
        for b, result in enumerate(results):
            xy = aux['keypoints'][b][query_mask[b]].float() * factors[b]
            result.keypoints = torch.cat(
                [xy, aux['visibility'][b][query_mask[b]].float().sigmoid()[..., None]], -1)
        return results

    def rescale(self, pred: InstanceData, img_meta: dict) -> InstanceData:
        """``bboxes`` and keypoint ``x, y`` in original pixels."""
        pred = super().rescale(pred, img_meta)
        pred.keypoints = points_to_original(pred.keypoints, img_meta)
        return pred
