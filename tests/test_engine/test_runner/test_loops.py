"""``REFVLMTestLoop``: skipped samples never reach the model, are counted and reported; a
progress bar in samples/s."""
import shutil
from pathlib import Path
from types import SimpleNamespace

from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from torch.utils.data import DataLoader, Dataset

from mmrefvlm.datasets.bad_samples import SkippedSample
from mmrefvlm.engine.runner import REFVLMTestLoop
from mmrefvlm.engine.runner.loops import SkippedSampleCollate, SplitBatch
from mmrefvlm.registry import DATASETS

CORPUS = Path(__file__).resolve().parents[2] / 'data' / 'bad_vtinstruct'


class _Samples(Dataset):
    """Ten samples; 2, 3 and 7 were skipped by the (test-mode) dataset."""
    metainfo = dict(classes=['square'])
    skipped = (2, 3, 7)

    def __len__(self):
        return 10

    def __getitem__(self, index):
        if index in self.skipped:
            return SkippedSample(f'train.jsonl line {index + 1}: bad')
        return dict(inputs=index, data_samples=index)


class _Evaluator:
    dataset_meta = None

    def __init__(self):
        self.seen = []

    def process(self, data_samples, data_batch):
        self.seen.extend(data_samples)

    def evaluate(self, size):
        return {'demo/count': len(self.seen)}


class _Model:

    def __init__(self):
        self.batches = []

    def eval(self):
        return self

    def test_step(self, data_batch):
        self.batches.append(list(data_batch['data_samples']))
        return list(data_batch['data_samples'])


def _runner():
    hooks = []
    return SimpleNamespace(model=_Model(), visualizer=SimpleNamespace(), hooks=hooks,
                           call_hook=lambda name, **kwargs: hooks.append(name))


def test_collate_sets_skipped_samples_aside():
    split = SkippedSampleCollate(pseudo_collate)(
        [dict(inputs=1, data_samples=1), SkippedSample('m'), dict(inputs=2, data_samples=2)])
    assert split.size == 2 and split.skipped == ['m']
    assert split.batch == dict(inputs=[1, 2], data_samples=[1, 2])
    assert SkippedSampleCollate(pseudo_collate)([SkippedSample('m')]) == SplitBatch(
        None, 0, ['m'])


def test_loop_evaluates_the_rest_and_reports_the_skipped(capsys, mmengine_warnings):
    runner, evaluator = _runner(), _Evaluator()
    loader = DataLoader(_Samples(), batch_size=2, collate_fn=pseudo_collate)
    loop = REFVLMTestLoop(runner, loader, evaluator)
    del mmengine_warnings[:]
    metrics = loop.run()
    # batch [2, 3] was skipped whole: the model never saw an empty batch
    assert runner.model.batches == [[0, 1], [4, 5], [6], [8, 9]]
    assert metrics == {'demo/count': 7, 'skipped_samples': 3}
    assert runner.hooks[:2] == ['before_test', 'before_test_epoch']
    assert runner.hooks[-2:] == ['after_test_epoch', 'after_test']
    assert mmengine_warnings == [
        'REFVLMTestLoop: 3 samples were skipped and are not in the metrics:\n'
        'train.jsonl line 3: bad\ntrain.jsonl line 4: bad\ntrain.jsonl line 8: bad']
    bar = capsys.readouterr().err
    assert 'test: 100%' in bar and '10/10' in bar and 'sample/s' in bar


def test_progress_bar_can_be_switched_off(capsys):
    loader = DataLoader(_Samples(), batch_size=5, collate_fn=pseudo_collate)
    REFVLMTestLoop(_runner(), loader, _Evaluator(), progress=False).run()
    assert 'sample/s' not in capsys.readouterr().err


def test_bad_corpus_evaluates_the_good_samples_and_reports_the_bad(tmp_path):
    """The corpus through ``VTInstructDataset`` (test mode) and the loop: the six image faults
    are skipped and named, the three good samples reach the model."""
    init_default_scope('mmrefvlm')
    shutil.copytree(CORPUS, tmp_path, dirs_exist_ok=True)
    dataset = DATASETS.build(dict(
        type='VTInstructDataset', data_root=str(tmp_path), ann_file='train.jsonl',
        test_mode=True, serialize_data=False,
        pipeline=[dict(type='LoadVTInstructImage')]))
    runner = _runner()
    runner.model.test_step = lambda data_batch: list(data_batch['line'])
    loader = DataLoader(dataset, batch_size=4, collate_fn=pseudo_collate)
    evaluator = _Evaluator()
    metrics = REFVLMTestLoop(runner, loader, evaluator, progress=False).run()
    assert metrics == {'demo/count': 3, 'skipped_samples': 6}
    assert evaluator.seen == [1, 11, 12]
