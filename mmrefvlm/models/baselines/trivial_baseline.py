"""A trivial baseline that answers every task without looking at the image.

Printed beside the model's metrics by ``tools/test.py --with-baseline`` so a number can be read
against what no learning gives: one whole-image box/mask per sample (phrase: the first offered
class, else ``object_phrase``), keypoints at the image centre, a constant depth, and a constant
text answer per text-only task. Ours; not in the paper.
"""
from typing import Dict, List, Optional

import torch
from mmdet.models.detectors.base import BaseDetector
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData, PixelData

from mmrefvlm.datasets.tasks import get_task
from mmrefvlm.registry import MODELS
from mmrefvlm.trp import compose_answer

DEFAULT_TEXT_ANSWERS = {'caption': 'There are some shapes in the image.', 'vqa': 'yes',
                        'pope': 'yes', 'reg': 'the shape'}


@MODELS.register_module()
class TrivialBaseline(BaseDetector):
    """Image-blind predictions for every task.

    Args:
        data_preprocessor: the evaluated model's preprocessor config (same batches).
        text_answers: constant answer per text-only task.
        object_phrase: phrase of the whole-image instance when no class list is offered.
        depth: constant depth in metres.
        num_keypoints: keypoints per instance (all at the image centre, visible).
    """

    def __init__(self, data_preprocessor: Optional[dict] = None,
                 text_answers: Optional[Dict[str, str]] = None, object_phrase: str = 'object',
                 depth: float = 5.0, num_keypoints: int = 17, init_cfg=None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.text_answers = {**DEFAULT_TEXT_ANSWERS, **(text_answers or {})}
        self.object_phrase = object_phrase
        self.depth = depth
        self.num_keypoints = num_keypoints
        # one parameter so that MMEngine's optimiser and device logic have something to hold
        self.register_buffer('_device_anchor', torch.zeros(1))

    def predict(self, inputs: dict, data_samples: List[DetDataSample],
                rescale: bool = True) -> List[DetDataSample]:
        for sample in data_samples:
            task = get_task(sample.metainfo['task'])
            height, width = sample.metainfo['ori_shape'][:2]
            pred = InstanceData()
            if task.unit is None:
                sample.pred_text = self.text_answers.get(task.name, '')
                sample.pred_phrases, sample.pred_triplets = [], []
                pred.bboxes = torch.zeros(0, 4)
                pred.scores = torch.zeros(0)
                pred.labels = pred.group_ids = torch.zeros(0, dtype=torch.long)
                sample.pred_instances = pred
                continue
            classes = sample.metainfo.get('classes') or []
            phrase = classes[0] if task.name in ('ovd', 'ovs') and classes else \
                self.object_phrase
            sample.pred_text = compose_answer([(phrase, task.unit, 1)])
            sample.pred_phrases = [phrase]
            sample.pred_triplets = [(phrase, (task.unit, ), 1)]
            pred.bboxes = torch.tensor([[0., 0., width, height]])
            pred.scores = torch.ones(1)
            pred.labels = pred.group_ids = torch.zeros(1, dtype=torch.long)
            pred.masks = torch.ones(1, height, width, dtype=torch.bool)
            centre = torch.tensor([width / 2, height / 2, 1.0])
            pred.keypoints = centre.repeat(1, self.num_keypoints, 1)
            sample.pred_instances = pred
            if task.unit == 'depth':
                sample.pred_depth_map = PixelData(data=torch.full((1, height, width), self.depth))
        return data_samples

    def loss(self, inputs, data_samples):
        raise RuntimeError('TrivialBaseline is not trained')

    def _forward(self, inputs, data_samples=None):
        raise RuntimeError('TrivialBaseline has no tensor forward')

    def extract_feat(self, inputs):
        raise RuntimeError('TrivialBaseline has no features')
