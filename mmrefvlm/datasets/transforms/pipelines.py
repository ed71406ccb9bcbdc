"""The standard train/test pipelines, so configs and tools build the same thing."""
from typing import List

from .conversation import DEFAULT_SYSTEM


def refvlm_pipeline(canvas_size: int,
                    tokenizer: dict,
                    max_length: int = 2048,
                    image_token_len: int = 1,
                    region_token_len: int = 1,
                    test_mode: bool = False,
                    system: str = DEFAULT_SYSTEM,
                    point_radius: int = 10,
                    scribble_width: int = 5) -> List[dict]:
    """Transform configs: load image and annotations → canvas → conversation → tokens → pack.

    Args:
        canvas_size: side S of the square canvas (the largest vision-tower input).
        tokenizer: config of :func:`mmrefvlm.tokenization.build_tokenizer`.
        max_length: token budget of a sample (trailing rounds are dropped beyond it).
        image_token_len: ``<image>`` copies per image (the global tower's token count).
        region_token_len: ``<region>`` copies per visual prompt.
        test_mode: hold out the final answer as ``gt_answer`` (evaluation pipelines).
        system: the system prompt.
        point_radius, scribble_width: visual-prompt rasterisation, in original pixels.

    Returns:
        A list of transform config dicts for ``dataset.pipeline``.
    """
    return [
        dict(type='LoadVTInstructImage'),
        dict(type='LoadVTInstructAnnotations', point_radius=point_radius,
             scribble_width=scribble_width),
        dict(type='ResizePadToCanvas', size=canvas_size),
        dict(type='RenderConversation', system=system, image_token_len=image_token_len,
             region_token_len=region_token_len, test_mode=test_mode),
        dict(type='TokenizeConversation', tokenizer=tokenizer, max_length=max_length),
        dict(type='PackREFVLMInputs'),
    ]
