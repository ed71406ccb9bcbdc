from .conversation import (DEFAULT_SYSTEM, END_OF_TURN, RenderConversation, RenderedConversation,
                           Segment, render_conversation)
from .formatting import PackREFVLMInputs
from .loading import LoadVTInstructAnnotations, LoadVTInstructImage
from .pipelines import refvlm_pipeline
from .resize import ResizePadToCanvas
from .tokenization import IGNORE_INDEX, ConversationTooLongError, TokenizeConversation

__all__ = [
    'ConversationTooLongError', 'DEFAULT_SYSTEM', 'END_OF_TURN', 'IGNORE_INDEX', 'LoadVTInstructAnnotations',
    'LoadVTInstructImage', 'PackREFVLMInputs', 'RenderConversation', 'RenderedConversation',
    'ResizePadToCanvas', 'Segment', 'TokenizeConversation', 'refvlm_pipeline', 'render_conversation'
]
