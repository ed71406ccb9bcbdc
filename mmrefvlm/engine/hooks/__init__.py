from .visualization_hook import REFVLMVisualizationHook, draw_prediction

__all__ = ['REFVLMVisualizationHook', 'draw_prediction']
