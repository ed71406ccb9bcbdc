"""Visual prompts and COCO segmentations → binary masks (original pixels)."""
import numpy as np
import pycocotools.mask as mask_utils
import pytest

from mmrefvlm.datasets.transforms.rasterize import decode_segmentation, prompt_mask

H, W = 30, 40


def _rasterize(prompt, radius=4, width=3):
    return prompt_mask(prompt, H, W, point_radius=radius, scribble_width=width)


def test_point_prompt_is_a_disk_of_the_radius():
    mask = _rasterize(dict(type='point', data=[20, 15]), radius=4)
    ys, xs = np.nonzero(mask)
    assert mask[15, 20] == 1
    assert np.all((xs - 20)**2 + (ys - 15)**2 <= 4.5**2)
    assert abs(mask.sum() - np.pi * 16) < 12


def test_box_prompt_fills_exactly_the_box():
    mask = _rasterize(dict(type='box', data=[5, 6, 10, 4]))
    expected = np.zeros((H, W), np.uint8)
    expected[6:10, 5:15] = 1
    np.testing.assert_array_equal(mask, expected)


def test_scribble_prompt_covers_its_polyline():
    points = [[2, 2], [30, 2], [30, 25]]
    mask = _rasterize(dict(type='scribble', data=points), width=3)
    for x in range(2, 31):
        assert mask[2, x] == 1
    for y in range(2, 26):
        assert mask[y, 30] == 1
    assert mask[20, 10] == 0


@pytest.mark.parametrize('encoding', ['compressed', 'uncompressed', 'polygon'])
def test_mask_prompt_and_segmentation_decode(encoding):
    expected = np.zeros((H, W), np.uint8)
    expected[10:20, 5:25] = 1
    if encoding == 'compressed':
        rle = mask_utils.encode(np.asfortranarray(expected))
        data = dict(size=rle['size'], counts=rle['counts'].decode('ascii'))
    elif encoding == 'uncompressed':
        flat = expected.flatten(order='F')
        changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
        counts = np.diff(np.concatenate([[0], changes])).tolist()
        data = dict(size=[H, W], counts=counts)
    else:
        data = [[5, 10, 25, 10, 25, 20, 5, 20]]
    mask = _rasterize(dict(type='mask', data=data))
    if encoding == 'polygon':
        # pycocotools rasterises polygon edges on pixel boundaries: allow the border row/column
        assert mask[10:20, 5:25].all() and mask.sum() <= 11 * 21
    else:
        np.testing.assert_array_equal(mask, expected)
        np.testing.assert_array_equal(decode_segmentation(data, H, W), expected)


def test_unknown_prompt_type_is_named():
    with pytest.raises(ValueError, match="'lasso'"):
        _rasterize(dict(type='lasso', data=[]))
