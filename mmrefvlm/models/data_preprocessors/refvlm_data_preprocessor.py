"""Batch images, token ids, labels and visual-prompt masks for ``REFVLM``."""
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.model import ImgDataPreprocessor

from mmrefvlm.registry import MODELS
from mmrefvlm.tokenization import IGNORE_INDEX, build_tokenizer


def pad_token_batch(sequences: Sequence[torch.Tensor], pad_value: int, side: str,
                    device: torch.device) -> torch.Tensor:
    """Stack 1-D LongTensors into ``[B, L_max]``, padding on ``side`` ('left' or 'right')."""
    length = max((len(seq) for seq in sequences), default=0)
    batch = torch.full((len(sequences), length), pad_value, dtype=torch.long, device=device)
    for row, seq in enumerate(sequences):
        if len(seq) == 0:
            continue
        if side == 'right':
            batch[row, :len(seq)] = seq
        else:
            batch[row, length - len(seq):] = seq
    return batch


@MODELS.register_module()
class REFVLMDataPreprocessor(ImgDataPreprocessor):
    """Images via MMEngine's ``ImgDataPreprocessor``; token ids, labels and prompt masks added.

    Returns ``dict(inputs=dict(images, input_ids, attention_mask, labels, prompt_masks),
    data_samples)``:

    - ``images``: float ``[B, 3, S, S]``, ``(x - mean) / std`` (RGB after ``bgr_to_rgb``).
    - ``input_ids``: long ``[B, L]``, padded with the tokenizer's pad id on the right in
      training and on the left in test mode (generation continues from the last column).
    - ``attention_mask``: long ``[B, L]``, 1 on real tokens.
    - ``labels``: long ``[B, L]`` (-100 on padding) or ``None`` when the samples have none.
    - ``prompt_masks``: ``list[Tensor[P_b, S, S]]`` float 0/1.

    Everything is moved to the model's device.

    Args:
        mean, std: per-channel normalisation, in the pixel range of the images (0-255).
        tokenizer: config of :func:`mmrefvlm.tokenization.build_tokenizer`.
        bgr_to_rgb: swap channels first (``LoadImageFromFile`` loads BGR).
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], tokenizer: dict,
                 bgr_to_rgb: bool = True, non_blocking: bool = False) -> None:
        super().__init__(mean=mean, std=std, bgr_to_rgb=bgr_to_rgb, non_blocking=non_blocking)
        self.pad_token_id: int = build_tokenizer(tokenizer).pad_token_id

    def forward(self, data: dict, training: bool = False) -> dict:
        batch = super().forward(data, training)
        samples = batch['data_samples']
        input_ids, attention_mask, labels = self.pad_tokens(samples, training)
        return dict(
            inputs=dict(images=batch['inputs'], input_ids=input_ids,
                        attention_mask=attention_mask, labels=labels,
                        prompt_masks=self.prompt_masks(samples, batch['inputs'].shape[-2:])),
            data_samples=samples)

    def pad_tokens(self, samples: Sequence,
                   training: bool) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """``(input_ids, attention_mask, labels)`` of the batch, padded right in training and
        left in test mode."""
        side = 'right' if training else 'left'
        ids = [sample.input_ids.to(self.device) for sample in samples]
        input_ids = pad_token_batch(ids, self.pad_token_id, side, self.device)
        ones = [torch.ones_like(seq) for seq in ids]
        attention_mask = pad_token_batch(ones, 0, side, self.device)
        labels = None
        if samples and all('labels' in sample for sample in samples):
            labels = pad_token_batch([sample.labels.to(self.device) for sample in samples],
                                     IGNORE_INDEX, side, self.device)
        return input_ids, attention_mask, labels

    def prompt_masks(self, samples: Sequence, canvas: torch.Size) -> List[torch.Tensor]:
        """Each sample's ``prompt_masks`` as float ``[P_b, S, S]`` on the model's device."""
        masks = []
        for sample in samples:
            mask = sample.get('prompt_masks')
            if mask is None:
                mask = torch.zeros((0, *canvas))
            masks.append(mask.to(device=self.device, dtype=torch.float32))
        return masks
