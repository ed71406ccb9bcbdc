from .mask_guided_aggregation import MaskGuidedAggregation, cosine_position_encoding

__all__ = ['MaskGuidedAggregation', 'cosine_position_encoding']
