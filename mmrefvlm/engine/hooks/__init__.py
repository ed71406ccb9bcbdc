from .final_weights_hook import FinalWeightsHook
from .visualization_hook import REFVLMVisualizationHook, draw_prediction

__all__ = ['FinalWeightsHook', 'REFVLMVisualizationHook', 'draw_prediction']
