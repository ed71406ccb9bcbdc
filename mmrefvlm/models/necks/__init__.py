from .llm_neck import LLMNeck
from .mask_guided_aggregation import MaskGuidedAggregation, cosine_position_encoding

__all__ = ['LLMNeck', 'MaskGuidedAggregation', 'cosine_position_encoding']
