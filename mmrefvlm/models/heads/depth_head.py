"""``RefDepthHead``: the depth unit (``<Unit>depth</Unit>``, paper §3.1, §3.3, App. B): each
routed ``<REF>`` query decodes a dense metric depth map of its image.

Our own (the paper names the unit and its data, not the decoder): MMDet's FPN ``PixelDecoder``
turns the pyramid into per-pixel features at the finest stride; the query modulates them with
FiLM (``(1 + γ(q)) · f + β(q)``, one ``γ, β`` per channel), a small conv head predicts
log-depth, bilinearly upsampled to the canvas; depth = ``exp(log-depth)`` metres (positive).
"""
import math
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData, PixelData
from torch import Tensor, nn

from mmrefvlm.registry import MODELS
from ..routers import RoutedQueries
from .canvas import maps_to_original, valid_pixel_mask
from .unit_head import PIXEL_DECODER, RefUnitHead


@MODELS.register_module()
class RefDepthHead(RefUnitHead):
    """Query-conditioned dense depth decoder.

    Depth queries are not matched: every valid depth query of a sample regresses that sample's
    depth map (``gt_depth_map``), with :class:`SILogLoss` on the valid pixels (depth > 0) inside
    ``img_shape`` at canvas resolution, averaged over the queries whose map has a valid pixel.
    The prediction of a sample is one map, the maximum over its depth queries (the union of
    the referred regions), as ``pred_depth_map``.

    Args:
        in_channels: LLM hidden width.
        pyramid_channels: channels of each pyramid level (strides ascending).
        embed_dims: width of the pixel features and of the projected query.
        pixel_decoder: MMDet pixel decoder config, completed with ``in_channels``,
            ``feat_channels`` and ``out_channels``; its ``norm_cfg`` also normalises the depth
            conv.
        init_depth: metres; the log-depth output starts with bias ``log(init_depth)``, so
            the first predictions scatter around it (the data's typical depth trains faster).
        loss_depth: :class:`SILogLoss` config (``λ = 0.85`` by default).
        init_cfg: MMEngine init config.
    """

    loss_names = ('loss_depth', )
    target_field = 'depths'

    def __init__(self,
                 in_channels: int,
                 pyramid_channels: Sequence[int],
                 embed_dims: int = 256,
                 pixel_decoder: dict = PIXEL_DECODER,
                 init_depth: float = 1.0,
                 loss_depth: dict = dict(type='SILogLoss', lambda_=0.85, loss_weight=1.0),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if init_depth <= 0:
            raise ValueError(f'RefDepthHead: init_depth={init_depth} must be positive (metres)')
        self.input_proj = nn.Sequential(nn.Linear(in_channels, embed_dims),
                                        nn.LayerNorm(embed_dims))
        self.pixel_decoder = MODELS.build(dict(pixel_decoder, in_channels=list(pyramid_channels),
                                               feat_channels=embed_dims,
                                               out_channels=embed_dims))
        self.film = nn.Linear(embed_dims, 2 * embed_dims)
        self.depth_conv = ConvModule(embed_dims, embed_dims, 3, padding=1,
                                     norm_cfg=pixel_decoder['norm_cfg'],
                                     act_cfg=dict(type='ReLU'))
        self.depth_pred = nn.Conv2d(embed_dims, 1, 1)
        self.loss_depth = MODELS.build(loss_depth)
        nn.init.constant_(self.depth_pred.bias, math.log(init_depth))

    def forward(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                batch_img_metas: Sequence[dict]) -> Tensor:
        """Log-depth of every query (padded slots included) at the pixel-feature resolution.

        Args:
            queries: ``[B, Q, C_llm]``; query_mask: ``[B, Q]`` bool (padding is computed too,
            and independent of the valid queries); pyramid: per level ``[B, C_i, h_i, w_i]``;
            batch_img_metas: per sample meta.

        Returns:
            Tensor: ``[B, Q, h_0, w_0]`` natural log of depth (metres) on the finest pyramid
            grid over the canvas.
        """
        features, _ = self.pixel_decoder(list(pyramid), list(batch_img_metas))  # [B, E, h, w]
        gamma, beta = self.film(self.input_proj(queries)).chunk(2, -1)  # [B, Q, E] each
        modulated = features[:, None] * (1 + gamma[..., None, None]) + beta[..., None, None]
        batch, num_queries = modulated.shape[:2]
        log_depth = self.depth_pred(self.depth_conv(modulated.flatten(0, 1)))
        return log_depth.view(batch, num_queries, *log_depth.shape[-2:])

    def _canvas_log_depth(self, log_depth: Tensor, meta: dict) -> Tensor:
        """``[n, h_0, w_0]`` → ``[n, S, S]`` fp32 log-depth on the canvas (bilinear)."""
        canvas = tuple(int(v) for v in meta['pad_shape'][:2])
        return F.interpolate(log_depth[:, None].float(), size=canvas, mode='bilinear',
                             align_corners=False)[:, 0]

    def loss_keys(self) -> List[str]:
        return list(self.loss_names)

    def get_targets(self, data_samples: Sequence[DetDataSample],
                    queries: RoutedQueries) -> List[InstanceData]:
        """Per sample an ``InstanceData`` whose metainfo ``depth_map`` is its ``[1, S, S]``
        depth map (``None`` without one): depth queries regress the whole map."""
        return [InstanceData(metainfo=dict(depth_map=sample.gt_depth_map.data
                                           if 'gt_depth_map' in sample else None))
                for sample in data_samples]

    def loss_by_feat(self, queries: Tensor, query_mask: Tensor, group_ids: Tensor,
                     pyramid: Sequence[Tensor], targets: Sequence[InstanceData],
                     batch_img_metas: Sequence[dict]) -> Dict[str, Tensor]:
        """Scale-invariant log loss of every valid query against its image's depth map.

        Args:
            queries: ``[B, Q, C_llm]``; query_mask: ``[B, Q]`` bool.
            group_ids: ``[B, Q]`` (unused: depth queries are not matched).
            pyramid: per level ``[B, C_i, h_i, w_i]``.
            targets: per sample (:meth:`get_targets`) the metainfo ``depth_map``: ``[1, S, S]``
                (or ``[S, S]``) depth in metres on the canvas, 0 = invalid; ``None`` for a
                sample without a depth map (its queries get no loss).
            batch_img_metas: per sample, ``img_shape`` and ``pad_shape``.

        Returns:
            dict: ``loss_depth``; with no valid query (or no valid pixel), a zero that still
            depends on every parameter.
        """
        if not bool(query_mask.any()):
            return self.empty_loss(queries, pyramid, batch_img_metas)
        if len(targets) != len(batch_img_metas):
            raise ValueError(
                f'RefDepthHead.loss_by_feat: {len(targets)} targets (depth maps) for '
                f'{len(batch_img_metas)} samples')
        log_depth = self(queries, query_mask, pyramid, batch_img_metas)
        preds, gts, valids = [], [], []
        for b, meta in enumerate(batch_img_metas):
            depth_map = targets[b].get('depth_map')
            if depth_map is None or not bool(query_mask[b].any()):
                continue
            pred = self._canvas_log_depth(log_depth[b][query_mask[b]], meta)
            target = torch.as_tensor(depth_map, device=pred.device).float()
            target = target.reshape(target.shape[-2:])
            if target.shape != pred.shape[-2:]:
                raise ValueError(f'RefDepthHead.loss_by_feat: the depth map of sample {b} is '
                                 f'{tuple(target.shape)}, the canvas (pad_shape) is '
                                 f'{tuple(pred.shape[-2:])}')
            valid = valid_pixel_mask([meta], tuple(pred.shape[-2:]), pred.device)[0].bool()
            preds.append(pred)
            gts.append(target.expand_as(pred))
            valids.append(valid.expand_as(pred))
        zero = log_depth.float().sum() * 0.
        if not preds:
            return dict(loss_depth=zero)
        return dict(loss_depth=self.loss_depth(torch.cat(preds), torch.cat(gts),
                                               torch.cat(valids)) + zero)

    def predict_by_feat(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                        batch_img_metas: Sequence[dict]) -> List[InstanceData]:
        """Depth maps of the valid queries on the canvas.

        Returns:
            list: per sample ``InstanceData`` with one row per valid query, in query order:
            ``depth [n, S, S]`` fp32 metres (0 outside ``img_shape``), ``scores [n]`` (1.0: the
            head has no confidence branch) and ``bboxes [n, 4]`` zeros (a depth map has no box;
            every row carries one so that drawings and box metrics see every ``<REF>``).
        """
        log_depth = self(queries, query_mask, pyramid, batch_img_metas)
        results = []
        for b, meta in enumerate(batch_img_metas):
            canvas = tuple(int(v) for v in meta['pad_shape'][:2])
            if not bool(query_mask[b].any()):
                depth = log_depth.new_zeros((0, *canvas)).float()
            else:
                depth = self._canvas_log_depth(log_depth[b][query_mask[b]], meta).exp()
            depth = depth * valid_pixel_mask([meta], canvas, depth.device)[0]
            results.append(InstanceData(depth=depth, scores=depth.new_ones(len(depth)),
                                        bboxes=depth.new_zeros((len(depth), 4))))
        return results

    def to_data_sample(self, pred: InstanceData, img_meta: dict,
                       rescale: bool) -> DetDataSample:
        """``pred_instances`` (``scores``, ``bboxes``) and ``pred_depth_map``: the maximum of the
        rows' maps, ``[1, H, W]`` original pixels when ``rescale`` (else ``[1, S, S]``); none
        when the sample has no depth query."""
        depth = pred.pop('depth')
        result = DetDataSample(pred_instances=pred)
        if len(depth):
            depth = depth.max(0).values[None]
            result.pred_depth_map = PixelData(
                data=maps_to_original(depth, img_meta) if rescale else depth)
        return result
