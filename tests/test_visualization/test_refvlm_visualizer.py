"""REFVLMVisualizer: scaled-up pictures, one colour per phrase on the image and in the text."""
import warnings

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData, PixelData

from mmrefvlm.registry import VISUALIZERS
from mmrefvlm.visualization import REFVLMVisualizer, depth_colour_map
from mmrefvlm.visualization.refvlm_visualizer import PALETTE

COT = '<Task>\nUnit decode (True). Class name, target unit and number:\n' \
      '- Name: dog Unit: box Num: 1\n</Task>\n'


def _sample(keypoints=False, depth=False) -> DetDataSample:
    sample = DetDataSample()
    sample.pred_text = COT + ('A <Phrase>dog</Phrase>(<Unit>box</Unit>[0]<REF>) near a '
                              '<Phrase>tree</Phrase>(<Unit>mask</Unit>[0]<REF>).')
    sample.pred_triplets = [('dog', ('box', ), 1), ('tree', ('mask', ), 1)]
    masks = torch.zeros(2, 48, 64, dtype=torch.bool)
    masks[1, 20:40, 40:60] = True
    pred = InstanceData(bboxes=torch.tensor([[4., 4., 30., 30.], [40., 20., 60., 40.]]),
                        masks=masks, scores=torch.ones(2), group_ids=torch.tensor([0, 1]))
    if keypoints:
        pred.keypoints = torch.tensor([[[10., 10., 1.], [20., 20., 1.], [25., 10., 0.]],
                                       [[0., 0., 0.]] * 3])
    sample.pred_instances = pred
    if depth:
        sample.pred_depth_map = PixelData(data=torch.linspace(1, 5, 48 * 64).view(1, 48, 64))
    return sample


def _has(picture, colour):
    return bool(np.all(picture == np.array(colour, np.uint8), axis=-1).any())


@pytest.fixture
def visualizer():
    return VISUALIZERS.build(dict(type='REFVLMVisualizer', name='test_refvlm_visualizer'))


def test_small_images_are_scaled_up_and_the_answer_is_written_in_phrase_colours(visualizer):
    image = np.full((48, 64, 3), 128, np.uint8)
    picture = visualizer.draw_prediction(image, _sample())
    assert isinstance(visualizer, REFVLMVisualizer)
    assert picture.shape[1] == 512 and picture.shape[0] > 384  # scaled 8x, text panel below
    drawn, text = picture[:384], picture[384:]
    assert _has(drawn, PALETTE[0])  # the dog's box
    assert _has(text, PALETTE[0]) and _has(text, PALETTE[1])  # 'dog' and 'tree' in colour
    # the tree's mask is blended into its region, the background is not
    assert not np.array_equal(drawn[250, 400], drawn[10, 200])


def test_task_block_only_on_request(visualizer):
    image = np.zeros((48, 64, 3), np.uint8)
    plain = visualizer.draw_prediction(image, _sample())
    with_task = visualizer.draw_prediction(image, _sample(), show_task=True)
    assert with_task.shape[0] > plain.shape[0] + 2 * visualizer.font_size


def test_keypoint_skeleton_and_depth_panel(visualizer):
    visualizer.dataset_meta = dict(skeleton=[[0, 1], [1, 2]])
    image = np.zeros((48, 64, 3), np.uint8)
    picture = visualizer.draw_prediction(image, _sample(keypoints=True, depth=True))
    assert picture.shape[1] == 1024  # image | depth colour map
    depth = picture[:384, 512:]
    assert len(np.unique(depth.reshape(-1, 3), axis=0)) > 50


def test_add_datasample_writes_the_picture(visualizer, tmp_path):
    out = tmp_path / 'pic.png'
    visualizer.add_datasample('pic', np.zeros((48, 64, 3), np.uint8), _sample(),
                              out_file=str(out))
    assert out.is_file() and visualizer.get_image().shape[1] == 512


def test_depth_colour_map_is_black_without_depth():
    depth = np.zeros((4, 4), np.float32)
    depth[0, 0], depth[1, 1] = 1.0, 3.0
    coloured = depth_colour_map(depth)
    assert (coloured[2:] == 0).all() and coloured[0, 0].any()
    assert not np.array_equal(coloured[0, 0], coloured[1, 1])


def test_a_box_past_the_image_is_drawn_clipped_without_warnings(visualizer):
    sample = _sample()
    sample.pred_instances.bboxes = torch.tensor([[-6., 30., 70., 60.], [70., 50., 90., 60.]])
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # MMEngine warns about positions out of the image
        picture = visualizer.draw_prediction(np.zeros((48, 64, 3), np.uint8), sample)
    drawn = picture[:384]
    # the dog's box, clipped to x 0-64, y 30-48 (x8): its edges along the image's borders
    assert _has(drawn[240:, :8], PALETTE[0]) and _has(drawn[240:, -8:], PALETTE[0])
