"""``REFVLMTrainLoop`` + ``ResumableInfiniteSampler``: a resumed run draws the batches an
uninterrupted run draws, without reading the records already trained on; a resume that would
train nothing stops."""
import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

from mmrefvlm.engine.runner import NothingToTrain


class _Records(Dataset):
    """Twenty records (their index), counting the reads."""

    def __init__(self):
        self.reads = 0

    def __len__(self):
        return 20

    def __getitem__(self, index):
        self.reads += 1
        return dict(inputs=torch.tensor([float(index)]))


class _Model(BaseModel):
    """Records the indices of every batch it trains on."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 1)
        self.batches = []

    def forward(self, inputs, data_samples=None, mode='tensor'):
        batch = torch.stack(inputs)
        self.batches.append([int(x) for x in batch[:, 0]])
        return dict(loss=self.linear(batch).pow(2).mean())


def _runner(work_dir, max_iters, resume=False, seed=0):
    return Runner(
        model=_Model(), work_dir=str(work_dir), experiment_name=f'run_{max_iters}_{resume}',
        train_dataloader=dict(dataset=_Records(), batch_size=3, num_workers=0,
                              sampler=dict(type='ResumableInfiniteSampler', shuffle=True),
                              collate_fn=dict(type='pseudo_collate')),
        train_cfg=dict(type='REFVLMTrainLoop', max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=4, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=seed),
        resume=resume, default_scope='mmrefvlm')


def test_resume_continues_the_stream_without_replay(tmp_path):
    whole = _runner(tmp_path / 'whole', 10)
    whole.train()
    first = _runner(tmp_path / 'split', 4)
    first.train()
    # another seed: the resumed stream is the checkpoint's all the same
    resumed = _runner(tmp_path / 'split', 10, resume=True, seed=7)
    resumed.train()
    assert first.model.batches + resumed.model.batches == whole.model.batches
    # the 6 batches it trained on, none of the first run's
    assert resumed.train_loop.dataloader.dataset.reads == 6 * 3


def test_resume_at_max_iters_stops_naming_the_iteration(tmp_path):
    _runner(tmp_path, 4).train()
    runner = _runner(tmp_path, 4, resume=True)
    with pytest.raises(NothingToTrain, match='at iteration 4 and max_iters is 4: nothing would '
                       'train.*--cfg-options max_iters='):
        runner.train()
    assert runner.model.batches == [] and runner.train_loop.dataloader.dataset.reads == 0
