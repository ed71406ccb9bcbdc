"""Grounding DINO's box decoder as REF-VLM's box unit
(``custom_imports=['projects.grounding_dino_box.grounding_dino_box']``)."""
from .checkpoint import gdino_state_dict, load_gdino_state
from .gdino_ref_box_head import GroundingDINORefBoxHead

__all__ = ['GroundingDINORefBoxHead', 'gdino_state_dict', 'load_gdino_state']
