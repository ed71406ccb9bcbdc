"""The LLM neck: projector + Mask-Guided Aggregation + HF causal LM (paper §4.1–4.2).

One wrapper owns the tokenizer, the special tokens and the generation settings, so HF types stay
inside this module (mmpretrain's LLaVA wrapper does the same). The input sequence carries one
``<image>`` id per global image token and one ``<region>`` id per prompt token (the pipeline
expands the placeholders); this module overwrites those positions with projected embeddings.
"""
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmrefvlm.registry import MODELS
from mmrefvlm.trp import add_special_tokens
from ..language.generation import GenerationOutput, greedy_generate
from ..language.lm import build_causal_lm
from ..language.packing import PackedBatch
from mmrefvlm.tokenization import build_tokenizer
from .mask_guided_aggregation import MaskGuidedAggregation


def build_projector(in_channels: int, out_channels: int, depth: int) -> nn.Sequential:
    """LLaVA's ``mlp{depth}x_gelu`` projector."""
    layers: List[nn.Module] = [nn.Linear(in_channels, out_channels)]
    for _ in range(depth - 1):
        layers += [nn.GELU(), nn.Linear(out_channels, out_channels)]
    return nn.Sequential(*layers)


@MODELS.register_module()
class LLMNeck(BaseModule):
    """Projector, visual-prompt aggregation and the causal LM.

    Args:
        lm: LM source, see :func:`mmrefvlm.models.language.build_causal_lm`. For
            ``type='config'`` a missing ``vocab_size`` is set to the tokenizer's size.
        tokenizer: tokenizer source, see :func:`mmrefvlm.tokenization.build_tokenizer`.
        visual_channels: channels ``C_g`` of the tower's global tokens.
        projector_depth: number of linear layers of the shared projector.
        aggregation: config of :class:`MaskGuidedAggregation` (``grid`` fixes the number of
            tokens per visual prompt, which the pipeline's ``region_token_len`` must match).
        freeze_lm: keep the LM frozen (stage 1).
        lora: optional ``peft.LoraConfig`` keyword arguments; the new special-token rows of the
            embeddings and the LM head stay trainable.
        gradient_checkpointing: enable HF gradient checkpointing in the LM.
        max_new_tokens: generation budget at inference.
        packing: in the teacher-forced pass, pack the batch's sequences into as few rows as
            they fit (:class:`~mmrefvlm.models.language.packing.PackedBatch`); same states
            and loss, fewer padded tokens through the LM.
    """

    def __init__(self, lm: dict, tokenizer: dict, visual_channels: int,
                 projector_depth: int = 2, aggregation: Optional[dict] = None,
                 freeze_lm: bool = False, lora: Optional[dict] = None,
                 gradient_checkpointing: bool = False, max_new_tokens: int = 128,
                 packing: bool = False, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.tokenizer = build_tokenizer(tokenizer)
        lm = dict(lm)
        if lm.get('type') == 'config':
            lm['config'] = dict(lm['config'])
            if lm['config'].get('vocab_size') is None:
                lm['config']['vocab_size'] = len(self.tokenizer)
        self.lm = build_causal_lm(lm)
        self.special_ids: Dict[str, int] = add_special_tokens(self.tokenizer, self.lm)
        self.lm.config.pad_token_id = self.tokenizer.pad_token_id
        hidden = self.lm.get_input_embeddings().embedding_dim
        self.projector = build_projector(visual_channels, hidden, projector_depth)
        self.aggregation = MaskGuidedAggregation(**(aggregation or {}))
        self.max_new_tokens = max_new_tokens
        self.packing = packing
        if gradient_checkpointing:
            self.lm.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs=dict(use_reentrant=False))
        if freeze_lm:
            self.lm.requires_grad_(False)
        if lora is not None:
            self.lm = self._wrap_lora(self.lm, lora)

    @staticmethod
    def _wrap_lora(lm, lora: dict):
        from peft import LoraConfig, get_peft_model
        lora = dict(lora)
        lora.setdefault('modules_to_save', ['embed_tokens', 'lm_head'])
        return get_peft_model(lm, LoraConfig(task_type='CAUSAL_LM', **lora))

    @property
    def hidden_size(self) -> int:
        return self.lm.get_input_embeddings().embedding_dim

    @property
    def region_token_len(self) -> int:
        return self.aggregation.num_tokens

    def decode(self, token_ids: Sequence[int]) -> str:
        """Token ids → text, special tokens kept (the TRP parser needs them)."""
        return self.tokenizer.decode(list(token_ids), skip_special_tokens=False)

    def embed(self, input_ids: Tensor, global_tokens: Tensor, global_grid: Sequence[int],
              prompt_masks: Sequence[Tensor]) -> Tensor:
        """Embed token ids and splice in image and visual-prompt embeddings.

        Args:
            input_ids: ``[B, L]``, with ``N`` ``<image>`` ids per sample and
                ``region_token_len`` ``<region>`` ids per visual prompt.
            global_tokens: ``[B, N, C_g]`` from the vision tower, row-major over ``global_grid``.
            global_grid: ``(h, w)`` with ``h * w == N``.
            prompt_masks: per sample ``[P_b, S, S]`` canvas masks in ``<region>`` order.

        Returns:
            ``[B, L, D]`` input embeddings for the LM.
        """
        image_id, region_id = self.special_ids['<image>'], self.special_ids['<region>']
        embeds = self.lm.get_input_embeddings()(input_ids)
        image_slots = input_ids == image_id
        per_sample = image_slots.sum(1)
        if not bool((per_sample == global_tokens.shape[1]).all()):
            raise ValueError(
                f'LLMNeck: each sample must hold {global_tokens.shape[1]} <image> tokens (the '
                f'tower grid {tuple(global_grid)}), got {per_sample.tolist()}; set the '
                'pipeline\'s image_token_len to match the tower')
        image_embeds = self.projector(global_tokens).to(embeds.dtype)
        embeds = embeds.masked_scatter(image_slots[..., None], image_embeds)
        region_slots = input_ids == region_id
        if bool(region_slots.any()):
            features = global_tokens.transpose(1, 2).unflatten(2, tuple(global_grid))
            regions = [
                self.aggregation(features[b], masks.to(features)).flatten(0, 1)
                for b, masks in enumerate(prompt_masks)
            ]
            regions = torch.cat(regions)
            if regions.shape[0] != int(region_slots.sum()):
                raise ValueError(
                    f'LLMNeck: {int(region_slots.sum())} <region> tokens in the batch but '
                    f'{regions.shape[0]} prompt tokens ({self.region_token_len} per prompt)')
            region_embeds = self.projector(regions).to(embeds.dtype)
            embeds = embeds.masked_scatter(region_slots[..., None], region_embeds)
        return embeds

    def forward(self, input_ids: Tensor, attention_mask: Tensor, labels: Optional[Tensor],
                global_tokens: Tensor, global_grid: Sequence[int],
                prompt_masks: Sequence[Tensor]) -> Dict[str, Tensor]:
        """Teacher-forced pass.

        Returns:
            ``dict(hidden=[B, L, D] last-layer states, loss=LM cross-entropy or None)``.
        """
        embeds = self.embed(input_ids, global_tokens, global_grid, prompt_masks)
        if not self.packing:
            out = self.lm(inputs_embeds=embeds, attention_mask=attention_mask, labels=labels,
                          output_hidden_states=True, use_cache=False)
            return dict(hidden=out.hidden_states[-1], loss=out.loss)
        packed = PackedBatch.from_mask(attention_mask)
        out = self.lm(inputs_embeds=packed.pack(embeds, 0.),
                      attention_mask=packed.attention_mask(embeds.dtype),
                      position_ids=packed.position_ids,
                      labels=None if labels is None else packed.pack_labels(labels),
                      output_hidden_states=True, use_cache=False)
        return dict(hidden=packed.unpack(out.hidden_states[-1]), loss=out.loss)

    @torch.no_grad()
    def generate(self, input_ids: Tensor, attention_mask: Tensor, global_tokens: Tensor,
                 global_grid: Sequence[int], prompt_masks: Sequence[Tensor],
                 max_new_tokens: Optional[int] = None) -> GenerationOutput:
        """Greedy generation from left-padded prompts (see :func:`greedy_generate`)."""
        embeds = self.embed(input_ids, global_tokens, global_grid, prompt_masks)
        return greedy_generate(
            self.lm, embeds, attention_mask, self.lm.get_input_embeddings(),
            eos_id=self.tokenizer.eos_token_id, pad_id=self.tokenizer.pad_token_id,
            max_new_tokens=max_new_tokens or self.max_new_tokens)
