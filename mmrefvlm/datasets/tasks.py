"""The task table of VT-Instruct: one entry per value of a record's ``task`` field.

This module is the single source of truth for which task produces which visual unit, which
answer elements its task command announces, and whether its human turns carry visual prompts.
Renderers, the conversation transform, the validator and the metrics all read it.
"""
from dataclasses import dataclass
from typing import Optional, Tuple


@dataclass(frozen=True)
class TaskSpec:
    """What a task asks for.

    Args:
        name: value of the record's ``task`` field.
        family: the paper's task family (Table 1 / Appendix B).
        unit: visual unit decoded from ``<REF>`` states, ``None`` for text-only answers.
        elements: answer elements announced in the task command.
        needs_prompts: human turns carry ``<region>`` visual prompts.
        description: the task name written into the task command.
    """
    name: str
    family: str
    unit: Optional[str]
    elements: Tuple[str, ...]
    needs_prompts: bool
    description: str


_SPECS = (
    TaskSpec('caption', 'visual_understanding', None, ('sentence', ), False, 'image caption'),
    TaskSpec('vqa', 'visual_understanding', None, ('sentence', ), False,
             'visual question answering'),
    TaskSpec('pope', 'visual_understanding', None, ('sentence', ), False,
             'object hallucination question answering'),
    TaskSpec('rec', 'referring_expression', 'box', ('phrase', 'unit'), False,
             'referring expression comprehension'),
    TaskSpec('res', 'referring_expression', 'mask', ('phrase', 'unit'), False,
             'referring expression segmentation'),
    TaskSpec('reg', 'referring_expression', None, ('sentence', ), True,
             'referring expression generation'),
    TaskSpec('ig_box', 'interactive_grounding', 'box', ('phrase', 'unit'), True,
             'interactive grounding to box'),
    TaskSpec('ig_mask', 'interactive_grounding', 'mask', ('phrase', 'unit'), True,
             'interactive grounding to mask'),
    TaskSpec('ig_keypoint', 'interactive_grounding', 'keypoint', ('phrase', 'unit'), True,
             'interactive grounding to keypoints'),
    TaskSpec('gcg_box', 'grounded_conversation', 'box', ('sentence', 'phrase', 'unit'), False,
             'grounded conversation generation with boxes'),
    TaskSpec('gcg_mask', 'grounded_conversation', 'mask', ('sentence', 'phrase', 'unit'), False,
             'grounded conversation generation with masks'),
    TaskSpec('ovd', 'open_vocabulary', 'box', ('phrase', 'unit'), False,
             'open-vocabulary detection'),
    TaskSpec('ovs', 'open_vocabulary', 'mask', ('phrase', 'unit'), False,
             'open-vocabulary segmentation'),
    TaskSpec('fovd', 'open_vocabulary', 'box', ('phrase', 'unit'), False,
             'freeform open-vocabulary detection'),
    TaskSpec('fovs', 'open_vocabulary', 'mask', ('phrase', 'unit'), False,
             'freeform open-vocabulary segmentation'),
    TaskSpec('keypoint', 'keypoint_detection', 'keypoint', ('phrase', 'unit'), False,
             'keypoint detection'),
    TaskSpec('depth', 'depth_estimation', 'depth', ('phrase', 'unit'), False,
             'depth estimation'),
)

TASKS = {spec.name: spec for spec in _SPECS}
UNITS = ('box', 'mask', 'keypoint', 'depth')


def get_task(name: str) -> TaskSpec:
    """Return the spec of task ``name``; raise ``KeyError`` listing the known tasks."""
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f'unknown task {name!r}; known tasks: {", ".join(TASKS)}') from None
