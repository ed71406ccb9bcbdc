from .answer_text import AnswerSpan, readable_answer, task_block
from .refvlm_visualizer import REFVLMVisualizer, depth_colour_map

__all__ = ['REFVLMVisualizer', 'AnswerSpan', 'readable_answer', 'task_block',
           'depth_colour_map']
