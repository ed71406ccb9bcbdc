from .visualization_hook import REFVLMVisualizationHook

__all__ = ['REFVLMVisualizationHook']
