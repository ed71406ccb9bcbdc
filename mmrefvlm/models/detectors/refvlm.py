"""REFVLM: the detector — glue between vision tower, LLM neck, router and unit heads.

``loss``: tower → neck (teacher-forced LM) → router (by the answer's unit text) → each head's
loss on its queries. ``predict``: tower → greedy generation → router (by the *generated* unit
text) → each head's predictions (original pixels) → merged into one row per ``<REF>``.
The detector never names a unit: heads own theirs (:class:`RefUnitHead`).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.models.detectors.base import BaseDetector
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmrefvlm.datasets import tasks
from mmrefvlm.registry import MODELS
from mmrefvlm.trp import parse_ref_tokens
from ..heads.unit_head import has_target
from ..routers import RoutedQueries
from .checkpoint_shapes import refuse_mismatched_shapes


@MODELS.register_module()
class REFVLM(BaseDetector):
    """REF-VLM (paper Fig. 3–4).

    Args:
        backbone: vision tower config (global tokens for the LLM, pyramid for the heads).
        neck: :class:`LLMNeck` config.
        heads: ``{unit: head config}``, one :class:`RefUnitHead` per unit the router sends
            queries to; each gets ``in_channels`` (LLM width) and ``pyramid_channels`` (tower
            pyramid). Every key must be a unit of the task table
            (:data:`mmrefvlm.datasets.tasks.UNITS`, what the renderers write and the validator
            accepts): a misspelt key would build a head that no query ever reaches.
        router: :class:`LatentEmbeddingRouter` config; it gets ``units`` (``heads``' keys),
            ``vocab_size`` and ``embed_dims`` (the LLM's).
        data_preprocessor: :class:`REFVLMDataPreprocessor` config.
        lm_loss_weight: weight of the LM cross-entropy (paper Eq. 9).
        unit_loss_weights: ``{unit: weight}`` of each head's losses (paper Eq. 9's per-decoder
            weights); units not named weigh 1.
        frozen_modules: names of sub-modules whose parameters are frozen, e.g. the
            ``heads.<unit>`` of the decoders a stage keeps fixed. A frozen head still runs, so
            gradients reach the LM through its queries.
        train_cfg: optional ``extra_units={unit: (other units, ...)}`` (our addition, off by
            default): in training, the head of ``unit`` also learns from the queries routed to
            the other units whose targets carry what it reads (its ``target_field``).
        allow_mismatched_shapes: load checkpoints whose tensors differ in shape from the
            model's, keeping those tensors at their initialisation (logged). By default such a
            checkpoint (another config's) stops the load, listing the keys.
        init_cfg: MMEngine init config.
    """

    def __init__(self, backbone: dict, neck: dict, heads: Dict[str, dict],
                 router: Optional[dict] = None, data_preprocessor: Optional[dict] = None,
                 lm_loss_weight: float = 1.0,
                 unit_loss_weights: Optional[Dict[str, float]] = None,
                 frozen_modules: Sequence[str] = (), train_cfg: Optional[dict] = None,
                 allow_mismatched_shapes: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        unknown = sorted(set(heads) - set(tasks.UNITS))
        if unknown:
            raise ValueError(f'REFVLM: heads names units {unknown} that no task renders, so no '
                             f'query would reach their heads; known units: '
                             f'{", ".join(tasks.UNITS)} (mmrefvlm/datasets/tasks.py)')
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(dict(neck, visual_channels=self.backbone.global_channels))
        self.heads = nn.ModuleDict({
            unit: MODELS.build(dict(cfg, in_channels=self.neck.hidden_size,
                                    pyramid_channels=tuple(self.backbone.pyramid_channels)))
            for unit, cfg in heads.items()
        })
        self.router = MODELS.build(dict(
            router or dict(type='LatentEmbeddingRouter'), units=tuple(heads),
            vocab_size=len(self.neck.tokenizer), embed_dims=self.neck.hidden_size))
        self.lm_loss_weight = lm_loss_weight
        self.extra_units = (train_cfg or {}).get('extra_units', {})
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
        if not allow_mismatched_shapes:
            self.register_load_state_dict_pre_hook(refuse_mismatched_shapes)

    def extract_feat(self, images: Tensor) -> Tuple[Tensor, Tuple[Tensor, ...]]:
        """Returns ``global_tokens [B, N, C_g]`` and the pyramid ``tuple([B, C_i, H_i, W_i])``."""
        return self.backbone(images)

    def forward_language(self, inputs: dict) -> Tuple[dict, Tuple[Tensor, ...]]:
        """Vision tower, then the teacher-forced LLM.

        Returns:
            tuple: the neck's ``dict(hidden=[B, L, C], loss=LM loss or None)`` and the pyramid
            ``tuple([B, C_i, H_i, W_i])``.
        """
        global_tokens, pyramid = self.extract_feat(inputs['images'])
        out = self.neck(inputs['input_ids'], inputs['attention_mask'], inputs.get('labels'),
                        global_tokens, self.backbone.global_grid, inputs['prompt_masks'])
        return out, pyramid

    def _forward(self, inputs: dict, data_samples=None) -> dict:
        """Teacher-forced hidden states and the pyramid (no heads), for tracing/debugging."""
        out, pyramid = self.forward_language(inputs)
        return dict(hidden=out['hidden'], pyramid=pyramid)

    # ----------------------------------------------------------------------------- training
    def loss(self, inputs: dict, data_samples: List[DetDataSample]) -> Dict[str, Tensor]:
        """LM loss plus every head's losses (named ``{unit}.{loss}``) on its routed queries."""
        out, pyramid = self.forward_language(inputs)
        routed = self.router.route(inputs['input_ids'], out['hidden'], self.neck.special_ids,
                                   self.neck.decode, valid=inputs['labels'] != -100)
        return dict(loss_lm=out['loss'] * self.lm_loss_weight,
                    **self.head_losses(routed, pyramid, data_samples, inputs['images']))

    def head_losses(self, routed: Dict[str, RoutedQueries], pyramid: Sequence[Tensor],
                    data_samples: Sequence[DetDataSample],
                    images: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Every head's losses on its unit's queries, followed by the ``extra_units`` queries
        whose targets have what it reads (``train_cfg``)."""
        losses = {}
        for unit, head in self.heads.items():
            queries = routed[unit]
            for other in self.extra_units.get(unit, ()):
                queries = queries.extend(
                    routed[other], has_target(data_samples, routed[other], head.target_field))
            weight = self.unit_loss_weights.get(unit, 1.0)
            losses.update({f'{unit}.{name}': value * weight if 'loss' in name else value
                           for name, value in head.loss(queries, pyramid, data_samples,
                                                        images).items()})
        return losses

    # ---------------------------------------------------------------------------- inference
    def predict(self, inputs: dict, data_samples: List[DetDataSample],
                rescale: bool = True) -> List[DetDataSample]:
        """Generate, route the generated ``<REF>`` states, and merge every head's predictions
        into ``pred_instances`` (one row per ``<REF>``, in original pixels when ``rescale``);
        also ``pred_text``, ``pred_phrases``, ``pred_triplets`` and the heads' sample-level
        fields."""
        global_tokens, pyramid = self.extract_feat(inputs['images'])
        generated = self.neck.generate(
            inputs['input_ids'], inputs['attention_mask'], global_tokens,
            self.backbone.global_grid, inputs['prompt_masks'])
        steps = torch.arange(generated.tokens.shape[1], device=generated.tokens.device)
        valid = steps[None] < generated.lengths[:, None]
        routed = self.router.route(generated.tokens, generated.hidden, self.neck.special_ids,
                                   self.neck.decode, valid=valid)
        per_head = [head.predict(routed[unit], pyramid, data_samples, rescale, inputs['images'])
                    for unit, head in self.heads.items()]
        for b, sample in enumerate(data_samples):
            tokens = generated.tokens[b, :int(generated.lengths[b])].tolist()
            sample.pred_text = self.neck.tokenizer.decode(tokens, skip_special_tokens=False)
            triplets = parse_ref_tokens(tokens, self.neck.special_ids, self.neck.decode)
            sample.pred_phrases = [t.phrase for t in triplets]
            sample.pred_triplets = [(t.phrase, t.units, len(t.ref_positions)) for t in triplets]
            parts = [results[b] for results in per_head]
            sample.pred_instances = merge_instances([part.pred_instances for part in parts])
            for part in parts:
                for key, value in part.items():
                    if key != 'pred_instances':
                        sample.set_field(value, key)
        return data_samples


def merge_instances(parts: Sequence[InstanceData]) -> InstanceData:
    """One row per ``<REF>`` (``ref_index`` order) from the heads' rows.

    A composite unit sends one ``<REF>`` to several heads: its row takes each field from the
    first head that predicts it, and the lowest of their ``scores``. A row that no head gave a
    field gets zeros of that field's shape. ``labels`` are the ``group_ids``.

    Args:
        parts: per head, rows with ``ref_index``, ``group_ids``, ``scores`` and its fields.

    Returns:
        InstanceData: ``group_ids``, ``labels``, ``scores`` and every field of ``parts``.
    """
    refs = sorted({ref for part in parts for ref in part.ref_index.tolist()})
    row_of = {ref: i for i, ref in enumerate(refs)}
    device = parts[0].ref_index.device if parts else 'cpu'
    group_ids = torch.zeros(len(refs), dtype=torch.long, device=device)
    scores = torch.ones(len(refs), device=device)
    fields: Dict[str, Tensor] = {}
    filled: Dict[str, Tensor] = {}
    for part in parts:
        rows = torch.tensor([row_of[r] for r in part.ref_index.tolist()], dtype=torch.long,
                            device=device)
        group_ids[rows] = part.group_ids.to(device)
        if 'scores' in part:
            scores[rows] = torch.minimum(scores[rows], part.scores.to(device).float())
        for key, value in part.items():
            if key in ('ref_index', 'group_ids', 'scores'):
                continue
            if key not in fields:
                fields[key] = value.new_zeros((len(refs), *value.shape[1:]))
                filled[key] = torch.zeros(len(refs), dtype=torch.bool, device=device)
            new = rows[~filled[key][rows]]
            fields[key][new] = value[~filled[key][rows]].to(fields[key].device)
            filled[key][new] = True
    merged = InstanceData(group_ids=group_ids, labels=group_ids.clone(), scores=scores)
    for key, value in fields.items():
        merged[key] = value
    return merged
