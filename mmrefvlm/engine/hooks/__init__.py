from .final_weights_hook import FinalWeightsHook
from .visualization_hook import REFVLMVisualizationHook

__all__ = ['FinalWeightsHook', 'REFVLMVisualizationHook']
