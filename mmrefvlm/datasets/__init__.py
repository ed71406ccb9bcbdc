from . import renderers, synthetic, transforms  # noqa: F401
from .record import Fault, validate_record
from .samplers import LengthGroupedInfiniteSampler, MixtureInfiniteSampler, conversation_length
from .tasks import TASKS, UNITS, TaskSpec, get_task
from .vtinstruct import VTInstructDataset

__all__ = [
    'TASKS', 'UNITS', 'TaskSpec', 'get_task', 'Fault', 'validate_record', 'VTInstructDataset',
    'LengthGroupedInfiniteSampler', 'MixtureInfiniteSampler', 'conversation_length'
]
