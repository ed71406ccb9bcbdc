from . import renderers, synthetic, transforms  # noqa: F401
from .tasks import TASKS, UNITS, TaskSpec, get_task

__all__ = ['TASKS', 'UNITS', 'TaskSpec', 'get_task']
