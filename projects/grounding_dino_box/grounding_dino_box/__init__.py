"""Grounding DINO's encoder and decoder as REF-VLM's box unit
(``custom_imports=['projects.grounding_dino_box.grounding_dino_box']``)."""
from .checkpoint import gdino_state_dict, load_gdino_state
from .grounding_dino_ref_box_head import GroundingDINORefBoxHead
from .modules import (GDINO_BERT, GDINO_DECODER, GDINO_ENCODER, GDINO_NECK, GDINO_SWIN_T,
                      GroundingDinoModules)

__all__ = ['GroundingDINORefBoxHead', 'GroundingDinoModules', 'load_gdino_state',
           'gdino_state_dict', 'GDINO_SWIN_T', 'GDINO_NECK', 'GDINO_ENCODER', 'GDINO_DECODER',
           'GDINO_BERT']
