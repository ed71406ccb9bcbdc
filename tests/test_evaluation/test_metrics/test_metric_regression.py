"""Regression: a segm task whose prediction decoded another unit (no masks) scores as misses."""
import numpy as np

from mmrefvlm.evaluation.metrics.coco_eval import region_annotations


def test_maskless_predictions_are_empty_masks_not_errors():
    pred = dict(bboxes=np.array([[0., 0., 4., 4.], [1., 1., 3., 3.]]))
    regions = region_annotations(pred, 'segm', 'GCGMetric', 'sample', maskless_size=(6, 8))
    assert len(regions) == 2 and all(r['area'] == 0.0 for r in regions)
    try:
        region_annotations(pred, 'segm', 'GCGMetric', 'sample')
    except ValueError as error:
        assert 'no masks' in str(error)
    else:
        raise AssertionError('ground truth without masks must be an error')
