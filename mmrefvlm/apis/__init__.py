from .hf_export import export_hf, load_exported, load_exported_config
from .inputs import Request
from .predictions import prediction_to_dict
from .refvlm_inferencer import REFVLMInferencer

__all__ = ['REFVLMInferencer', 'Request', 'prediction_to_dict', 'export_hf', 'load_exported',
           'load_exported_config']
