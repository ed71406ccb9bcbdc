"""``RefUnitHead``: what every unit head owns (DESIGN.md §1), whatever its unit.

A unit head takes the routed ``<REF>`` queries of its unit, the vision pyramid and the data
samples; it selects its own targets, computes its losses (and the empty, "fake tensor" loss of
paper App. C.2), and returns its predictions in original pixels as ``InstanceData`` fields that
the detector merges by name. A subclass writes :meth:`forward`, :meth:`loss_by_feat`,
:meth:`predict_by_feat` and :meth:`rescale`; a head with its own image encoder (a pretrained
external decoder under ``projects/``) also :meth:`image_features`.
"""
from abc import abstractmethod
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.structures import DetDataSample
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor

from ..routers import RoutedQueries

# MMDet's FPN pixel decoder as MaskFormer configures it; ``in_channels``, ``feat_channels`` and
# ``out_channels`` are filled in by the head.
PIXEL_DECODER = dict(type='PixelDecoder', norm_cfg=dict(type='GN', num_groups=32),
                     act_cfg=dict(type='ReLU'))


def select_targets(data_samples: Sequence[DetDataSample],
                   queries: RoutedQueries) -> List[InstanceData]:
    """The rows of each sample's ``gt_instances`` (``<REF>`` order) that its valid queries refer
    to, in query order, with the queries' ``group_ids``. Masks arrive as float tensors.

    The sample's scene boxes (``gt_scene_instances.bboxes``, every annotated object in view),
    when packed, travel in the metainfo as ``scene_bboxes``.
    """
    targets = []
    for b, sample in enumerate(data_samples):
        valid = queries.mask[b]
        rows = queries.ref_index[b][valid]
        gt = sample.gt_instances
        if len(rows) and int(rows.max()) >= len(gt):
            raise ValueError(
                f'sample {sample.metainfo.get("img_id")} has {len(gt)} target rows but its '
                f'answer has <REF> #{int(rows.max())}')
        selected = InstanceData(metainfo=gt.metainfo)
        for key, value in gt.items():
            if hasattr(value, 'to_tensor'):  # BitmapMasks
                value = value.to_tensor(dtype=torch.float32, device=rows.device)
            selected[key] = value[rows.to(value.device)]
        selected.group_ids = queries.group_ids[b][valid]
        if 'gt_scene_instances' in sample:
            selected.set_metainfo(dict(scene_bboxes=sample.gt_scene_instances.bboxes))
        targets.append(selected)
    return targets


def has_target(data_samples: Sequence[DetDataSample], queries: RoutedQueries,
               field: str) -> Tensor:
    """``[B, Q]`` whether each valid query's target row has a non-empty ``field`` (an instance
    without a mask carries an all-zero one)."""
    keep = torch.zeros_like(queries.mask)
    for b, sample in enumerate(data_samples):
        valid = queries.mask[b].nonzero()[:, 0]
        if not len(valid) or field not in sample.gt_instances:
            continue
        value = sample.gt_instances[field]
        value = value.masks if hasattr(value, 'to_tensor') else value  # BitmapMasks
        rows = queries.ref_index[b][valid].tolist()
        keep[b, valid] = torch.tensor([bool(value[r].any()) for r in rows], device=keep.device)
    return keep


class RefUnitHead(BaseModule):
    """Base of the unit heads: routed queries and data samples in, losses and original-pixel
    predictions out.

    Attributes:
        target_field: the ``gt_instances`` field the head learns from (a query borrowed from
            another unit trains this head only when its target has it).
    """

    target_field: str = ''

    @abstractmethod
    def forward(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                batch_img_metas: Sequence[dict]) -> Tensor:
        """Raw outputs of every query (padded ones included)."""

    def forward_with_aux(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                         batch_img_metas: Sequence[dict]) -> Tuple[Tensor, dict]:
        """:meth:`forward`'s outputs and whatever auxiliary losses read (nothing here)."""
        return self(queries, query_mask, pyramid, batch_img_metas), {}

    @abstractmethod
    def loss_keys(self) -> List[str]:
        """Names of the losses :meth:`loss_by_feat` returns."""

    @abstractmethod
    def loss_by_feat(self, queries: Tensor, query_mask: Tensor, group_ids: Tensor,
                     pyramid: Sequence[Tensor], targets: Sequence[InstanceData],
                     batch_img_metas: Sequence[dict]) -> Dict[str, Tensor]:
        """Losses of the valid queries.

        Args:
            queries: ``[B, Q, C_llm]``; query_mask: ``[B, Q]`` bool; group_ids: ``[B, Q]`` long,
                -1 on padding; pyramid: per level ``[B, C_i, h_i, w_i]``.
            targets: per sample (:meth:`get_targets`) the targets of the valid queries.
            batch_img_metas: per sample image meta.
        """

    @abstractmethod
    def predict_by_feat(self, queries: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                        batch_img_metas: Sequence[dict]) -> List[InstanceData]:
        """Per sample, one row per valid query (query order) on the canvas, with ``scores``."""

    def rescale(self, pred: InstanceData, img_meta: dict) -> InstanceData:
        """Canvas → original pixels for the fields the head predicts (none here)."""
        return pred

    def get_targets(self, data_samples: Sequence[DetDataSample],
                    queries: RoutedQueries) -> List[InstanceData]:
        """Per sample, the targets of its valid queries (:func:`select_targets`)."""
        return select_targets(data_samples, queries)

    def image_features(self, images: Optional[Tensor], pyramid: Sequence[Tensor],
                       batch_img_metas: Sequence[dict]) -> Sequence[Tensor]:
        """The feature maps the head decodes over (what its methods call ``pyramid``): the
        vision tower's pyramid. A head with its own image encoder encodes ``images`` instead.

        Args:
            images: ``[B, 3, S, S]`` the canvas as the data preprocessor normalised it, or
                ``None`` when the caller has no images.
            pyramid: the tower's levels ``[B, C_i, h_i, w_i]``, strides ascending.
            batch_img_metas: per sample image meta.

        Returns:
            tuple: per level ``[B, C, h, w]``.
        """
        return pyramid

    def loss(self, queries: RoutedQueries, pyramid: Sequence[Tensor],
             data_samples: Sequence[DetDataSample],
             images: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Losses of the unit's queries; a head reads only the samples that hold them (its
        losses are means over queries, so the others add nothing but compute).

        Args:
            queries: the unit's routed queries for the batch.
            pyramid: per level ``[B, C_i, h_i, w_i]``.
            data_samples: the batch's samples, with ``gt_instances`` in ``<REF>`` order.
            images: ``[B, 3, S, S]`` the preprocessed canvas (read by :meth:`image_features`).
        """
        rows = queries.mask.any(1).nonzero()[:, 0]
        if queries.num_queries == 0:
            rows = rows.new_zeros(1)
        metas = [data_samples[i].metainfo for i in rows.tolist()]
        features = self.image_features(None if images is None else images[rows],
                                       tuple(level[rows] for level in pyramid), metas)
        if queries.num_queries == 0:
            return self.empty_loss(queries.queries, features, metas)
        queries = queries.select(rows)
        samples = [data_samples[i] for i in rows.tolist()]
        return self.loss_by_feat(queries.queries, queries.mask, queries.group_ids, features,
                                 self.get_targets(samples, queries), metas)

    def empty_loss(self, queries: Tensor, pyramid: Sequence[Tensor],
                   batch_img_metas: Sequence[dict]) -> Dict[str, Tensor]:
        """Zero losses from a real forward of one dummy query: every parameter of the head, and
        through ``queries`` the LLM and the router, gets a gradient, so that DDP never waits on
        a head that saw no target (the paper's "fake tensors", App. C.2).

        Args:
            queries: ``[B, Q, C_llm]`` (``Q`` may be 0) the unit's queries, in the graph.
            pyramid: per level ``[B, C_i, h_i, w_i]``.
            batch_img_metas: image meta of at least one sample.
        """
        dummy = queries.new_zeros((1, 1, queries.shape[-1])) + queries.sum() * 0
        dummy_mask = torch.ones(1, 1, dtype=torch.bool, device=queries.device)
        outputs, aux = self.forward_with_aux(dummy, dummy_mask, [feat[:1] for feat in pyramid],
                                             batch_img_metas[:1])
        zero = outputs.float().sum() * 0.
        for value in aux.values():
            if isinstance(value, Tensor):
                zero = zero + value[value.isfinite()].float().sum() * 0.
        return {name: zero for name in self.loss_keys()}

    @torch.no_grad()
    def predict(self, queries: RoutedQueries, pyramid: Sequence[Tensor],
                data_samples: Sequence[DetDataSample], rescale: bool = True,
                images: Optional[Tensor] = None) -> List[DetDataSample]:
        """Predictions of the unit's queries (``images``: as in :meth:`loss`).

        Returns:
            list: per sample a ``DetDataSample`` whose ``pred_instances`` has one row per valid
            query (query order) with ``ref_index`` (the ``<REF>`` it answers), ``group_ids``,
            ``scores`` and the head's fields, in original pixels when ``rescale``; a head may
            add sample-level fields (e.g. a dense map).
        """
        metas = [sample.metainfo for sample in data_samples]
        if queries.num_queries == 0:
            preds = [InstanceData() for _ in metas]
        else:
            preds = self.predict_by_feat(queries.queries, queries.mask,
                                         self.image_features(images, pyramid, metas), metas)
        results = []
        for b, (pred, meta) in enumerate(zip(preds, metas)):
            result = self.to_data_sample(pred, meta, rescale) if len(pred.keys()) else \
                DetDataSample(pred_instances=pred)
            valid = queries.mask[b]
            result.pred_instances.ref_index = queries.ref_index[b][valid]
            result.pred_instances.group_ids = queries.group_ids[b][valid]
            results.append(result)
        return results

    def to_data_sample(self, pred: InstanceData, img_meta: dict,
                       rescale: bool) -> DetDataSample:
        """One sample's prediction as a ``DetDataSample`` (``pred_instances``, rescaled)."""
        return DetDataSample(pred_instances=self.rescale(pred, img_meta) if rescale else pred)
