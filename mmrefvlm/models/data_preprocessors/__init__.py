from .refvlm_data_preprocessor import REFVLMDataPreprocessor

__all__ = ['REFVLMDataPreprocessor']
