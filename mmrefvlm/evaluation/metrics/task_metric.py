"""The base of every mmrefvlm metric: a ``BaseMetric`` that only looks at its tasks' samples."""
from collections import defaultdict
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from mmengine.evaluator import BaseMetric

from mmrefvlm.datasets.tasks import get_task
from .sample_views import as_dict

TaskNames = Union[str, Sequence[str], None]


class TaskMetric(BaseMetric):
    """A metric restricted to samples whose metainfo ``task`` is one of ``tasks``.

    One evaluator list can then hold every metric of the paper: each metric keeps only its tasks'
    samples and reports ``{task}/{name}`` keys for each of its tasks that the split contains (a
    split without them gives no key). Samples of other tasks are stored as an empty dict, never
    dropped, so the number of results always equals the number of samples and MMEngine's
    distributed collection (which removes ``None`` entries and truncates to the dataset size)
    keeps exactly the real samples.

    Subclasses implement :meth:`process_sample` (what to keep of one sample, CPU only, no files)
    and :meth:`compute_task` (the numbers of one task from its kept results).

    Args:
        tasks: a task name or names (keys of ``mmrefvlm.datasets.TASKS``); ``None`` takes the
            class's ``default_tasks``.
        collect_device: see ``BaseMetric``.
        prefix: see ``BaseMetric``; e.g. the benchmark split, ``'refcocog_val'``.
    """
    default_tasks: Tuple[str, ...] = ()
    # '' rather than None: keys are already namespaced by task, and None makes BaseMetric warn.
    default_prefix: Optional[str] = ''

    def __init__(self,
                 tasks: TaskNames = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if tasks is None:
            tasks = self.default_tasks
        elif isinstance(tasks, str):
            tasks = (tasks, )
        for task in tasks:
            get_task(task)
        if not tasks:
            raise ValueError(f'{type(self).__name__}: no task given')
        self.tasks: Tuple[str, ...] = tuple(tasks)

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Keep what :meth:`process_sample` returns for each sample of this metric's tasks."""
        for data_sample in data_samples:
            sample = as_dict(data_sample)
            task = sample.get('task')
            if task in self.tasks:
                result = self.process_sample(sample)
                result['task'] = task
                self.results.append(result)
            else:
                self.results.append({})

    def compute_metrics(self, results: List[Dict[str, Any]]) -> Dict[str, float]:
        """Group the kept results by task and report ``{task}/{name}`` for each task seen."""
        by_task: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
        for result in results:
            if result:
                by_task[result['task']].append(result)
        metrics: Dict[str, float] = {}
        for task in self.tasks:
            if by_task[task]:
                for name, value in self.compute_task(task, by_task[task]).items():
                    metrics[f'{task}/{name}'] = value
        return metrics

    def process_sample(self, sample: Dict[str, Any]) -> Dict[str, Any]:
        """Return what the metric needs of one sample (plain Python / numpy, CPU)."""
        raise NotImplementedError

    def compute_task(self, task: str, results: List[Dict[str, Any]]) -> Dict[str, float]:
        """Return the named numbers of ``task`` from its kept results (at least one)."""
        raise NotImplementedError
