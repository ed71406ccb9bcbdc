"""Canvas → original conversion of ground truth, and the task filter shared by every metric."""
import numpy as np
import pytest

from mmrefvlm.evaluation.metrics import RECMetric, VQAMetric
from mmrefvlm.evaluation.metrics.sample_views import (as_dict, gt_depth_original,
                                                      gt_instances_original, pred_instances)


def test_gt_instances_back_in_original_pixels(make_sample):
    masks = np.zeros((2, 8, 10), dtype=bool)
    masks[0, 1:4, 2:7] = True
    masks[1, 5:8, 0:3] = True
    keypoints = np.array([[[1.0, 2.0, 2.0], [3.5, 4.0, 0.0]]] * 2)
    sample = make_sample('res', gt_boxes=[[1, 2, 5, 6], [0, 0, 10, 8]], gt_masks=masks,
                         gt_keypoints=keypoints, gt_labels=[3, 1])
    stored = sample.gt_instances
    assert stored.bboxes[0].tolist() == [2, 4, 10, 12]  # canvas px (× 2)
    assert stored.masks.masks.shape == (2, 20, 20)
    for gt in (gt_instances_original(as_dict(sample)), gt_instances_original(sample.to_dict())):
        np.testing.assert_allclose(gt['bboxes'], [[1, 2, 5, 6], [0, 0, 10, 8]])
        np.testing.assert_array_equal(gt['masks'], masks)
        np.testing.assert_allclose(gt['keypoints'], keypoints)
        assert gt['labels'].tolist() == [3, 1]
        assert gt['group_ids'].tolist() == [0, 1]


def test_gt_depth_and_missing_predictions(make_sample):
    depth = np.arange(80, dtype=np.float32).reshape(8, 10)
    sample = as_dict(make_sample('depth', gt_depth=depth))
    np.testing.assert_array_equal(gt_depth_original(sample), depth)
    pred = pred_instances(sample)
    assert pred['bboxes'].shape == (0, 4) and pred['scores'].shape == (0, )


def test_metric_keeps_only_its_tasks(make_sample, evaluate):
    rec = make_sample('rec', gt_boxes=[[0, 0, 4, 4]], pred_boxes=[[0, 0, 4, 4]])
    vqa = make_sample('vqa', pred_text='two', gt_answer='2')
    metric = RECMetric()
    metric.process({}, [rec.to_dict(), vqa.to_dict()])
    assert len(metric.results) == 2  # one entry per sample, the vqa one empty
    out = evaluate([RECMetric(), VQAMetric()], [rec, vqa, rec])
    assert out == {'rec/acc@0.5': 1.0, 'rec/miou': 1.0, 'vqa/accuracy': 1.0}
    assert evaluate([RECMetric()], [vqa]) == {}


def test_unknown_task_is_rejected():
    with pytest.raises(KeyError, match='unknown task'):
        RECMetric(tasks='detection')
