"""REFVLM: the detector — glue between vision tower, LLM neck, router and unit heads.

``loss``: tower → neck (teacher-forced LM) → router (by the answer's unit text) → each head's
loss on its queries and their ``<REF>``-ordered targets. ``predict``: tower → greedy generation →
router (by the *generated* unit text) → heads → predictions mapped back to original pixels.
"""
import inspect
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.detectors.base import BaseDetector
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData, PixelData
from torch import Tensor, nn

from mmrefvlm.registry import MODELS
from mmrefvlm.trp import parse_ref_tokens
from ..routers import RoutedQueries


@MODELS.register_module()
class REFVLM(BaseDetector):
    """REF-VLM (paper Fig. 3–4).

    Args:
        backbone: vision tower config (global tokens for the LLM, pyramid for the heads).
        neck: :class:`LLMNeck` config.
        router: :class:`LatentEmbeddingRouter` config; its ``units`` default to ``heads``' keys.
        heads: ``{unit: head config}``, e.g. ``dict(box=dict(type='RefBoxHead', ...))``.
        data_preprocessor: :class:`REFVLMDataPreprocessor` config.
        lm_loss_weight: weight of the LM cross-entropy (paper Eq. 9).
        unit_loss_weights: ``{unit: weight}`` of each head's losses (paper Eq. 9's per-decoder
            weights); units not named weigh 1.
        frozen_modules: names of sub-modules whose parameters are frozen, e.g.
            ``('heads.box', 'heads.mask')`` (stage 3 trains the keypoint decoder only). A frozen
            head still runs, so gradients reach the LM through its queries.
        train_cfg: optional ``extra_units={unit: (other units, ...)}`` (our addition, off by
            default): in training, the head of ``unit`` also learns from the queries routed to
            the other units whose targets carry what it reads (its ``target_field``: a REC
            query whose object has a mask also trains the mask head, a RES query the box
            head). Pointing at the referred object is the same skill for every head; this
            doubles the queries each locator learns it from.
    """

    def __init__(self, backbone: dict, neck: dict, heads: Dict[str, dict],
                 router: Optional[dict] = None, data_preprocessor: Optional[dict] = None,
                 lm_loss_weight: float = 1.0,
                 unit_loss_weights: Optional[Dict[str, float]] = None,
                 frozen_modules: Sequence[str] = (), train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None, init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        neck = dict(neck)
        neck.setdefault('visual_channels', self.backbone.global_channels)
        self.neck = MODELS.build(neck)
        head_cfgs = {unit: dict(cfg) for unit, cfg in heads.items()}
        for cfg in head_cfgs.values():
            cfg.setdefault('in_channels', self.neck.hidden_size)
            cfg.setdefault('pyramid_channels', tuple(self.backbone.pyramid_channels))
        self.heads = nn.ModuleDict({unit: MODELS.build(cfg) for unit, cfg in head_cfgs.items()})
        router = dict(router or dict(type='LatentEmbeddingRouter'))
        router.setdefault('units', tuple(head_cfgs))
        if router.get('phrase_embedding'):
            router.setdefault('vocab_size', len(self.neck.tokenizer))
            router.setdefault('embed_dims', self.neck.hidden_size)
        self.router = MODELS.build(router)
        self.lm_loss_weight = lm_loss_weight
        unknown = sorted(set(unit_loss_weights or {}) - set(self.heads))
        if unknown:
            raise ValueError(f'REFVLM: unit_loss_weights names units {unknown} without a head; '
                             f'heads: {sorted(self.heads)}')
        self.unit_loss_weights = dict(unit_loss_weights or {})
        for name in frozen_modules:
            try:
                self.get_submodule(name).requires_grad_(False)
            except AttributeError:
                raise ValueError(f'REFVLM: frozen_modules names {name!r}, which is not a '
                                 'sub-module of the model') from None
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg or {}

    def extract_feat(self, images: Tensor) -> Tuple[Tensor, Tuple[Tensor, ...]]:
        """Returns ``global_tokens [B, N, C_g]`` and the pyramid ``tuple([B, C_i, H_i, W_i])``."""
        return self.backbone(images)

    def _forward(self, inputs: dict, data_samples=None) -> dict:
        """Teacher-forced hidden states and routed queries (no heads), for tracing/debugging."""
        global_tokens, pyramid = self.extract_feat(inputs['images'])
        out = self.neck(inputs['input_ids'], inputs['attention_mask'], inputs.get('labels'),
                        global_tokens, self.backbone.global_grid, inputs['prompt_masks'])
        return dict(hidden=out['hidden'], pyramid=pyramid)

    # ----------------------------------------------------------------------------- training
    def loss(self, inputs: dict, data_samples: List[DetDataSample]) -> Dict[str, Tensor]:
        global_tokens, pyramid = self.extract_feat(inputs['images'])
        out = self.neck(inputs['input_ids'], inputs['attention_mask'], inputs['labels'],
                        global_tokens, self.backbone.global_grid, inputs['prompt_masks'])
        losses = {'loss_lm': out['loss'] * self.lm_loss_weight}
        routed = self.router.route(inputs['input_ids'], out['hidden'], self.neck.special_ids,
                                   self.neck.decode, valid=inputs['labels'] != -100)
        extra_units = (self.train_cfg or {}).get('extra_units', {})
        for unit, head in self.heads.items():
            queries = routed[unit]
            for other in extra_units.get(unit, ()):
                queries = queries.extend(routed[other], self._has_targets(
                    data_samples, routed[other], head.target_field))
            if queries.num_queries == 0:
                # "fake tensors" (paper App. C.2): the head still runs, at zero weight, on a
                # query that depends on the LM, so every rank builds the same graph
                queries = self._fake_queries(out['hidden'], queries.phrases,
                                             self.router.parameters())
            # a head reads only the samples that hold its queries (one sample for the fake
            # query): its losses are means over queries and target tokens, so the other
            # samples add nothing but compute
            rows = queries.mask.any(1).nonzero()[:, 0] if queries.num_queries else \
                queries.mask.new_zeros(1, dtype=torch.long)
            queries = queries.select(rows)
            samples = [data_samples[i] for i in rows.tolist()]
            targets = self._select_targets(samples, queries)
            dense = {}
            if 'depth_maps' in inspect.signature(head.loss).parameters:
                # heads that regress a dense map get the image-level targets as well
                dense['depth_maps'] = [
                    sample.gt_depth_map.data if 'gt_depth_map' in sample else None
                    for sample in samples
                ]
            head_losses = head.loss(queries.queries, queries.mask, queries.group_ids,
                                    tuple(level[rows] for level in pyramid), targets,
                                    [sample.metainfo for sample in samples], **dense)
            weight = self.unit_loss_weights.get(unit, 1.0)
            losses.update({f'{unit}.{name}': value * weight if 'loss' in name else value
                           for name, value in head_losses.items()})
        return losses

    @staticmethod
    def _fake_queries(hidden: Tensor, phrases: List[List[str]],
                      router_params: Iterable[Tensor]) -> RoutedQueries:
        batch = hidden.shape[0]
        queries = hidden[:, :1] * 0 + sum(p.sum() for p in router_params) * 0
        mask = torch.zeros(batch, 1, dtype=torch.bool, device=hidden.device)
        minus = torch.full((batch, 1), -1, dtype=torch.long, device=hidden.device)
        return RoutedQueries(queries, mask, minus, minus.clone(), phrases)

    @staticmethod
    def _has_targets(data_samples: Sequence[DetDataSample], queries: RoutedQueries,
                     field: str) -> Tensor:
        """``[B, Q]`` whether each valid query's target row has a non-empty ``field`` (an
        instance without a mask carries an all-zero one)."""
        keep = torch.zeros_like(queries.mask)
        for b, sample in enumerate(data_samples):
            valid = queries.mask[b].nonzero()[:, 0]
            if not len(valid) or field not in sample.gt_instances:
                continue
            value = sample.gt_instances[field]
            value = value.masks if hasattr(value, 'to_tensor') else value  # BitmapMasks
            rows = queries.ref_index[b][valid].tolist()
            keep[b, valid] = torch.tensor([bool(value[r].any()) for r in rows],
                                          device=keep.device)
        return keep

    @staticmethod
    def _select_targets(data_samples: Sequence[DetDataSample],
                        queries: RoutedQueries) -> List[InstanceData]:
        """Rows of each sample's ``gt_instances`` (``<REF>`` order) that the queries refer to."""
        targets = []
        for b, sample in enumerate(data_samples):
            valid = queries.mask[b]
            rows = queries.ref_index[b][valid]
            gt = sample.gt_instances
            if len(rows) and int(rows.max()) >= len(gt):
                raise ValueError(
                    f'REFVLM: sample {sample.metainfo.get("img_id")} has {len(gt)} target rows '
                    f'but its answer has <REF> #{int(rows.max())}')
            selected = InstanceData(metainfo=gt.metainfo)
            for key, value in gt.items():
                if hasattr(value, 'to_tensor'):  # BitmapMasks
                    value = value.to_tensor(dtype=torch.float32, device=rows.device)
                selected[key] = value[rows.to(value.device)]
            selected.group_ids = queries.group_ids[b][valid]
            targets.append(selected)
        return targets

    # ---------------------------------------------------------------------------- inference
    def predict(self, inputs: dict, data_samples: List[DetDataSample],
                rescale: bool = True) -> List[DetDataSample]:
        global_tokens, pyramid = self.extract_feat(inputs['images'])
        generated = self.neck.generate(
            inputs['input_ids'], inputs['attention_mask'], global_tokens,
            self.backbone.global_grid, inputs['prompt_masks'],
            max_new_tokens=self.test_cfg.get('max_new_tokens'))
        steps = torch.arange(generated.tokens.shape[1], device=generated.tokens.device)
        valid = steps[None] < generated.lengths[:, None]
        routed = self.router.route(generated.tokens, generated.hidden, self.neck.special_ids,
                                   self.neck.decode, valid=valid)
        metas = [sample.metainfo for sample in data_samples]
        unit_preds = {
            unit: self.heads[unit].predict(queries.queries, queries.mask, pyramid, metas)
            for unit, queries in routed.items() if queries.num_queries > 0
        }
        for b, sample in enumerate(data_samples):
            tokens = generated.tokens[b, :int(generated.lengths[b])].tolist()
            sample.pred_text = self.neck.tokenizer.decode(tokens, skip_special_tokens=False)
            triplets = parse_ref_tokens(tokens, self.neck.special_ids, self.neck.decode)
            sample.pred_phrases = [t.phrase for t in triplets]
            sample.pred_triplets = [(t.phrase, t.units, len(t.ref_positions)) for t in triplets]
            pred, depth = self._merge_units(b, routed, unit_preds, sample.metainfo)
            sample.pred_instances = self._rescale(pred, sample.metainfo) if rescale else pred
            if depth is not None:
                sample.pred_depth_map = PixelData(
                    data=self._to_original(depth[None], sample.metainfo, 'bilinear')[0][None]
                    if rescale else depth[None])
        return data_samples

    @staticmethod
    def _merge_units(b: int, routed: Dict[str, RoutedQueries],
                     unit_preds: Dict[str, List[InstanceData]],
                     meta: dict) -> Tuple[InstanceData, Optional[Tensor]]:
        """One row per ``<REF>`` of sample ``b`` (sequence order) with every unit's outputs.

        Boxes missing for a row (mask/keypoint-only units) are the box of its mask or of its
        visible keypoints; the depth unit yields an image-level map (the maximum over queries of
        valid depth, i.e. the union of referred regions).
        """
        height, width = meta['pad_shape'][:2]
        refs: Dict[int, dict] = {}
        depth = None
        for unit, preds in unit_preds.items():
            queries = routed[unit]
            valid = queries.mask[b]
            for row, (ref, group) in enumerate(
                    zip(queries.ref_index[b][valid].tolist(),
                        queries.group_ids[b][valid].tolist())):
                entry = refs.setdefault(ref, dict(group=group, score=1.0))
                pred = preds[b]
                entry['score'] = min(entry['score'], float(pred.scores[row]))
                if unit == 'box':
                    entry['bbox'] = pred.bboxes[row]
                elif unit == 'mask':
                    entry['mask'] = pred.masks[row]
                elif unit == 'keypoint':
                    entry['keypoints'] = pred.keypoints[row]
                    entry.setdefault('kpt_bbox', pred.bboxes[row])
                elif unit == 'depth':
                    region = pred.depth[row]
                    depth = region if depth is None else torch.maximum(depth, region)
        order = sorted(refs)
        result = InstanceData()
        device = next((p[0].bboxes.device for p in unit_preds.values() if len(p)), 'cpu')
        boxes, masks, keypoints = [], [], []
        has_masks = any('mask' in refs[r] for r in order)
        has_kpts = any('keypoints' in refs[r] for r in order)
        for ref in order:
            entry = refs[ref]
            mask = entry.get('mask')
            box = entry.get('bbox', entry.get('kpt_bbox'))
            if box is None:
                box = _mask_to_box(mask) if mask is not None else torch.zeros(4, device=device)
            boxes.append(box)
            if has_masks:
                masks.append(mask if mask is not None else torch.zeros(
                    height, width, device=device))
            if has_kpts:
                keypoints.append(entry.get('keypoints'))
        result.bboxes = torch.stack(boxes) if boxes else torch.zeros(0, 4, device=device)
        result.scores = torch.tensor([refs[r]['score'] for r in order], device=device)
        result.group_ids = torch.tensor([refs[r]['group'] for r in order], dtype=torch.long,
                                        device=device)
        result.labels = result.group_ids.clone()
        if has_masks:
            result.masks = torch.stack(masks)
        if has_kpts:
            kpt = next(k for k in keypoints if k is not None)
            result.keypoints = torch.stack(
                [k if k is not None else torch.zeros_like(kpt) for k in keypoints])
        return result, depth

    @staticmethod
    def _to_original(maps: Tensor, meta: dict, mode: str) -> Tensor:
        """``[n, S, S]`` canvas maps → ``[n, H, W]`` original pixels (crop padding, resize)."""
        img_h, img_w = meta['img_shape'][:2]
        ori_h, ori_w = meta['ori_shape'][:2]
        cropped = maps[:, :img_h, :img_w].float()
        if cropped.shape[0] == 0:
            return cropped.new_zeros(0, ori_h, ori_w)
        kwargs = dict(align_corners=False) if mode == 'bilinear' else {}
        return F.interpolate(cropped[:, None], size=(ori_h, ori_w), mode=mode, **kwargs)[:, 0]

    def _rescale(self, pred: InstanceData, meta: dict) -> InstanceData:
        """Canvas pixels → original image pixels (``canvas = original × scale_factor``)."""
        scale_x, scale_y = meta['scale_factor'][:2]
        ori_h, ori_w = meta['ori_shape'][:2]
        scale = pred.bboxes.new_tensor([scale_x, scale_y, scale_x, scale_y])
        pred.bboxes = pred.bboxes / scale
        pred.bboxes[:, 0::2] = pred.bboxes[:, 0::2].clamp(0, ori_w)
        pred.bboxes[:, 1::2] = pred.bboxes[:, 1::2].clamp(0, ori_h)
        if 'masks' in pred:
            pred.masks = self._to_original(pred.masks, meta, 'bilinear') > 0.5
        if 'keypoints' in pred:
            keypoints = pred.keypoints.clone()
            keypoints[..., 0] /= scale_x
            keypoints[..., 1] /= scale_y
            pred.keypoints = keypoints
        return pred


def _mask_to_box(mask: Tensor, threshold: float = 0.5) -> Tensor:
    """``[H, W]`` probabilities → ``[4]`` xyxy box of the pixels above ``threshold`` (zeros if none)."""
    ys, xs = torch.nonzero(mask > threshold, as_tuple=True)
    if len(xs) == 0:
        return mask.new_zeros(4)
    return torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).to(mask.dtype)
