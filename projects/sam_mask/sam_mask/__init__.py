"""SAM's mask decoder as REF-VLM's mask unit (``custom_imports=['projects.sam_mask.sam_mask']``)."""
from .checkpoint import load_sam_state, sam_state_dict
from .sam_ref_mask_head import (SAM_MASK_DECODER, SAM_VIT_B, SAM_VIT_H, SAM_VIT_L,
                                SAMRefMaskHead)

__all__ = ['SAMRefMaskHead', 'load_sam_state', 'sam_state_dict', 'SAM_VIT_B', 'SAM_VIT_L',
           'SAM_VIT_H', 'SAM_MASK_DECODER']
