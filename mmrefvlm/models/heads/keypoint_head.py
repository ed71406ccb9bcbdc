"""``RefKeypointHead``: the keypoint decoder of REF-VLM (paper App. D, stage 3) — the box decoder
plus a keypoint and a visibility branch, initialised from a trained box decoder ("The keypoint
decoder was initialized with the weights of the box decoder from the second stage")."""
import copy
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmdet.models.layers import MLP
from mmengine.logging import MMLogger
from mmengine.runner import CheckpointLoader
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmrefvlm.registry import MODELS
from .box_head import RefBoxHead
from .canvas import canvas_box_factors, points_to_original
from .ref_decoder_head import DETR_BOX_COSTS

# Prefix of the box head inside a full REFVLM checkpoint (``REFVLM.heads['box']``).
_BOX_HEAD_PREFIX = 'heads.box.'


@MODELS.register_module()
class RefKeypointHead(RefBoxHead):
    """Keypoint decoder: routed queries → DETR decoder → one box, ``K`` keypoints and ``K``
    visibility logits per query.

    The box is :class:`RefBoxHead`'s (sigmoid cxcywh normalised by the canvas). Keypoints are
    **relative to the predicted box**: ``(x, y) = (cx, cy) + tanh(o) · (w, h)``, so a keypoint
    lies within one box size of the box centre (twice the box extent, which holds every labelled
    keypoint of a box that encloses its instance), so a head initialised from a trained box
    decoder places its keypoints in the right frame from the first step. Keypoint gradients
    reach the box branch.

    Losses (each averaged over the matched instances of the batch):

    - ``loss_bbox`` / ``loss_iou``: :class:`RefBoxHead`'s L1 (normalised cxcywh) and GIoU;
    - ``loss_keypoint``: MMDet ``L1Loss`` on the normalised ``(x, y)`` of labelled keypoints
      (COCO ``v > 0``), averaged over those keypoints;
    - ``loss_oks``: :class:`OKSLoss`, ``1 - OKS`` in canvas pixels with ``s²`` = target box area;
    - ``loss_visibility``: MMDet sigmoid ``CrossEntropyLoss`` of every keypoint's logit against
      ``v > 0``, averaged over all keypoints of the matched instances.

    Default weights follow ED-Pose (keypoint L1 10, OKS 4, box L1 5, GIoU 2). Matching inside
    groups: box L1 + GIoU + :class:`KeypointOKSCost`; a ``KeypointOKSCost`` config without
    ``sigmas`` receives ``keypoint_sigmas``.

    Args:
        in_channels: LLM hidden width.
        pyramid_channels: channels of each pyramid level (strides ascending).
        num_keypoints: ``K``.
        keypoint_sigmas: ``[K]`` COCO OKS sigmas (``meta.json``'s ``keypoint_sigmas``).
        assigner: group assigner config (costs read ``bboxes`` xyxy canvas px and
            ``keypoints`` canvas px).
        loss_keypoint: MMDet L1 config for the keypoints.
        loss_oks: :class:`OKSLoss` config (``sigmas`` filled from ``keypoint_sigmas``).
        loss_visibility: MMDet sigmoid cross-entropy config.
        box_head_checkpoint: optional path of a :class:`RefBoxHead` or full ``REFVLM`` checkpoint
            whose shared weights :meth:`init_weights` copies (see :meth:`init_from_box_head`).
        **kwargs: :class:`RefBoxHead` arguments (``loss_bbox``, ``loss_iou``, ``locator``,
            ``decoder``...).
    """

    loss_names = ('loss_bbox', 'loss_iou', 'loss_keypoint', 'loss_oks', 'loss_visibility')
    target_field = 'keypoints'

    def __init__(self,
                 in_channels: int,
                 pyramid_channels: Sequence[int],
                 num_keypoints: int,
                 keypoint_sigmas: Sequence[float],
                 assigner: dict = dict(
                     type='GroupHungarianAssigner',
                     match_costs=[*DETR_BOX_COSTS, dict(type='KeypointOKSCost', weight=4.0)]),
                 loss_keypoint: dict = dict(type='L1Loss', loss_weight=10.0),
                 loss_oks: dict = dict(type='OKSLoss', loss_weight=4.0),
                 loss_visibility: dict = dict(type='CrossEntropyLoss', use_sigmoid=True,
                                              loss_weight=1.0),
                 box_head_checkpoint: Optional[str] = None,
                 **kwargs) -> None:
        if len(keypoint_sigmas) != num_keypoints:
            raise ValueError(f'RefKeypointHead: num_keypoints={num_keypoints} but '
                             f'{len(keypoint_sigmas)} keypoint_sigmas are given')
        super().__init__(in_channels, pyramid_channels,
                         assigner=_with_sigmas(assigner, keypoint_sigmas), **kwargs)
        self.num_keypoints = num_keypoints
        self.keypoint_sigmas = tuple(float(s) for s in keypoint_sigmas)
        self.box_head_checkpoint = box_head_checkpoint
        self.kpt_branch = MLP(self.embed_dims, self.embed_dims, 2 * num_keypoints, 3)
        self.vis_branch = MLP(self.embed_dims, self.embed_dims, num_keypoints, 2)
        self.loss_keypoint = MODELS.build(loss_keypoint)
        self.loss_oks = MODELS.build(dict(loss_oks, sigmas=self.keypoint_sigmas))
        self.loss_visibility = MODELS.build(loss_visibility)

    # ------------------------------------------------------------------------------ forward
    def outputs_from(self, hidden: Tensor, boxes: Tensor) -> Tensor:
        """Box, keypoints and visibility logits of every query at every decoder layer.

        Args:
            hidden: ``[num_layers, B, Q, C]`` decoder states; boxes: ``[num_layers, B, Q, 4]``.

        Returns:
            Tensor: ``[num_layers, B, Q, 4 + 3K]``: box cxcywh normalised by the canvas, then
            ``K`` keypoints ``(x, y)`` normalised by the canvas (row-major ``x0, y0, x1, …``),
            then ``K`` visibility logits.
        """
        offsets = self.kpt_branch(hidden).tanh().unflatten(-1, (self.num_keypoints, 2))
        keypoints = boxes[..., None, :2] + offsets * boxes[..., None, 2:]
        return torch.cat([boxes, keypoints.flatten(-2), self.vis_branch(hidden)], -1)

    def layer_predictions(self, outputs: Tensor, query_mask: Tensor,
                          batch_img_metas: Sequence[dict]) -> List[List[InstanceData]]:
        """Per layer, per sample, fp32: :class:`RefBoxHead`'s ``norm_bboxes`` / ``bboxes`` plus
        ``norm_keypoints [n, K, 2]`` (normalised), ``keypoints [n, K, 2]`` (canvas px) and
        ``visibility [n, K]`` logits of the valid queries."""
        num_kpt = self.num_keypoints
        per_layer = super().layer_predictions(outputs[..., :4], query_mask, batch_img_metas)
        factors = canvas_box_factors(batch_img_metas, outputs.device)[:, :2]
        for layer_outputs, samples in zip(outputs, per_layer):
            for b, (mask, pred) in enumerate(zip(query_mask, samples)):
                valid = layer_outputs[b][mask].float()
                norm = valid[:, 4:4 + 2 * num_kpt].unflatten(-1, (num_kpt, 2))
                pred.norm_keypoints = norm
                pred.keypoints = norm * factors[b]
                pred.visibility = valid[:, 4 + 2 * num_kpt:]
        return per_layer

    def matching_targets(self, targets: Sequence[InstanceData], outputs: Tensor,
                         batch_img_metas: Sequence[dict]) -> List[InstanceData]:
        """Targets: :class:`RefBoxHead`'s boxes plus ``keypoints [n, K, 3]`` (x, y canvas px, v)
        and ``norm_keypoints [n, K, 2]`` (normalised by the canvas)."""
        gts = super().matching_targets(targets, outputs, batch_img_metas)
        factors = canvas_box_factors(batch_img_metas, outputs.device)[:, :2]
        for b, (target, gt) in enumerate(zip(targets, gts)):
            if 'keypoints' in target:
                keypoints = torch.as_tensor(target.keypoints, dtype=torch.float32,
                                            device=outputs.device).reshape(
                                                -1, self.num_keypoints, 3)
            elif len(gt) == 0:  # a sample of the batch without keypoint queries
                keypoints = outputs.new_zeros((0, self.num_keypoints, 3), dtype=torch.float32)
            else:
                raise ValueError(f'RefKeypointHead: targets[{b}] has no `keypoints` field '
                                 f'(gt_instances of sample {b} lack keypoints for its '
                                 f'keypoint-unit <REF>s)')
            gt.keypoints = keypoints
            gt.norm_keypoints = keypoints[..., :2] / factors[b]
        return gts

    # --------------------------------------------------------------------------------- loss
    def layer_loss(self, preds: Sequence[InstanceData], gts: Sequence[InstanceData],
                   matches: Sequence[Tuple[Tensor, Tensor]],
                   batch_img_metas: Sequence[dict]) -> Dict[str, Tensor]:
        """Box, keypoint L1, OKS and visibility losses over the matched pairs of the batch."""
        losses = super().layer_loss(preds, gts, matches, batch_img_metas)
        losses.update(matched_keypoint_losses(self.loss_keypoint, self.loss_oks,
                                              self.loss_visibility, preds, gts, matches))
        return losses

    # ------------------------------------------------------------------------------ predict
    def predict_by_feat(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                        batch_img_metas: Sequence[dict]) -> List[InstanceData]:
        """Boxes and keypoints of the valid queries.

        Returns:
            list: per sample ``InstanceData`` with one row per valid query, in query order:
            ``bboxes [n, 4]`` xyxy canvas px, ``scores [n]`` (1.0: there is no class branch),
            ``keypoints [n, K, 3]`` (x, y canvas px clamped to the canvas, visibility
            probability).
        """
        last = self.layer_predictions(self(queries, query_mask, pyramid, batch_img_metas)[-1:],
                                      query_mask, batch_img_metas)[0]
        factors = canvas_box_factors(batch_img_metas, queries.device)[:, :2]
        results = []
        for b, pred in enumerate(last):
            xy = torch.minimum(pred.keypoints.clamp(min=0), factors[b])
            keypoints = torch.cat([xy, pred.visibility.sigmoid()[..., None]], -1)
            results.append(InstanceData(bboxes=pred.bboxes, scores=pred.bboxes.new_ones(len(pred)),
                                        keypoints=keypoints))
        return results

    def rescale(self, pred: InstanceData, img_meta: dict) -> InstanceData:
        """``bboxes`` and keypoint ``x, y`` in original pixels."""
        pred = super().rescale(pred, img_meta)
        pred.keypoints = points_to_original(pred.keypoints, img_meta)
        return pred

    # --------------------------------------------------------------------- initialisation
    def init_weights(self) -> None:
        """MMEngine initialisation, then the shared weights from ``box_head_checkpoint``."""
        super().init_weights()
        if self.box_head_checkpoint is not None:
            self.init_from_box_head(self.box_head_checkpoint)

    def init_from_box_head(
            self, state_dict_or_path: Union[str, Dict[str, Tensor]]) -> Dict[str, List[str]]:
        """Copy the parts shared with :class:`RefBoxHead` (input projection, pyramid fusion,
        decoder, box branch) from a trained box head.

        Args:
            state_dict_or_path: a ``RefBoxHead`` state dict, a full ``REFVLM`` state dict (the
                box head's keys under ``heads.box.``), or a checkpoint path/URL of either
                (MMEngine checkpoints with ``state_dict`` and DDP ``module.`` prefixes work).

        Returns:
            dict: ``loaded`` (keys copied), ``missing`` (this head's keys with no source: the
            keypoint and visibility branches) and ``unexpected`` (source keys not used, e.g. of a
            different shape), each sorted; also logged.
        """
        source = state_dict_or_path
        if isinstance(source, str):
            source = CheckpointLoader.load_checkpoint(source, map_location='cpu')
        source = _box_head_state(source)
        own = self.state_dict()
        usable = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
        self.load_state_dict(usable, strict=False)
        report = dict(loaded=sorted(usable), missing=sorted(set(own) - set(usable)),
                      unexpected=sorted(set(source) - set(usable)))
        MMLogger.get_current_instance().info(
            f'RefKeypointHead: initialised {len(report["loaded"])} tensors from the box head; '
            f'missing (kept their initialisation): {report["missing"]}; '
            f'unused: {report["unexpected"]}')
        return report


def matched_keypoint_losses(loss_keypoint: nn.Module, loss_oks: nn.Module,
                            loss_visibility: nn.Module, preds: Sequence[InstanceData],
                            gts: Sequence[InstanceData],
                            matches: Sequence[Tuple[Tensor, Tensor]]) -> Dict[str, Tensor]:
    """Keypoint L1 (normalised ``x, y`` of labelled keypoints), OKS (canvas pixels, ``s²`` = the
    target box's area) and visibility losses over the matched pairs of a batch.

    ``preds`` carry ``norm_keypoints [n, K, 2]``, ``keypoints [n, K, 2]`` and ``visibility
    [n, K]`` logits; ``gts`` carry ``norm_keypoints``, ``keypoints [m, K, 3]`` and ``bboxes``;
    ``matches`` are ``(pred rows, gt rows)`` per sample."""
    pred_norm, pred_px, pred_vis = (
        torch.cat([p[key][pi] for p, (pi, _) in zip(preds, matches)])
        for key in ('norm_keypoints', 'keypoints', 'visibility'))
    gt_norm, gt_kpt, gt_boxes = (torch.cat([g[key][gi] for g, (_, gi) in zip(gts, matches)])
                                 for key in ('norm_keypoints', 'keypoints', 'bboxes'))
    labelled = gt_kpt[..., 2] > 0
    areas = (gt_boxes[:, 2:] - gt_boxes[:, :2]).clamp(min=0).prod(-1)
    weight = labelled[..., None].expand_as(pred_norm).float()
    return dict(
        loss_keypoint=loss_keypoint(pred_norm, gt_norm, weight=weight,
                                    avg_factor=labelled.sum().clamp(min=1).item()),
        loss_oks=loss_oks(pred_px, gt_kpt[..., :2], labelled, areas),
        loss_visibility=loss_visibility(pred_vis.flatten(), labelled.float().flatten(),
                                        avg_factor=max(pred_vis.numel(), 1)))


def _with_sigmas(assigner: dict, sigmas: Sequence[float]) -> dict:
    """A copy of ``assigner`` whose ``KeypointOKSCost`` entries have ``sigmas``."""
    assigner = copy.deepcopy(dict(assigner))
    assigner['match_costs'] = [
        dict(cost, sigmas=list(sigmas)) if cost.get('type') == 'KeypointOKSCost'
        and 'sigmas' not in cost else cost for cost in assigner.get('match_costs', [])
    ]
    return assigner


def _box_head_state(checkpoint: dict) -> Dict[str, Tensor]:
    """The box head's tensors of a box-head or full ``REFVLM`` (MMEngine) checkpoint."""
    state = checkpoint.get('state_dict', checkpoint)
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    if any(k.startswith(_BOX_HEAD_PREFIX) for k in state):
        return {k[len(_BOX_HEAD_PREFIX):]: v for k, v in state.items()
                if k.startswith(_BOX_HEAD_PREFIX)}
    return state
