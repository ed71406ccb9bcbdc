"""ReferenceLocator: pointing at the attended region, the box read there, its two losses."""
import pytest
import torch
from mmengine.structures import InstanceData

from mmrefvlm.models.heads.locator import ReferenceLocator

DIMS = 8
SIZES = [(8, 8)]  # one memory level: token centres at (i + 0.5) / 8
META = [dict(img_shape=(64, 64), pad_shape=(64, 64))]


def targets(boxes, group_ids, **metainfo):
    """One sample's targets as the heads hand them to :meth:`ReferenceLocator.loss`."""
    return [InstanceData(metainfo=metainfo, bboxes=boxes, group_ids=group_ids)]


def pointing_locator(dense_bias: float = 0.0, mode_radius: float = None) -> ReferenceLocator:
    """A locator whose attention follows the memory content along the query (×1000) and
    whose token boxes all have half-sides ``sigmoid(dense_bias)``."""
    torch.manual_seed(0)
    locator = ReferenceLocator(DIMS)
    if mode_radius is not None:
        locator.mode_radius = mode_radius
    with torch.no_grad():
        locator.query_proj.weight.copy_(torch.eye(DIMS) * 1000)
        locator.query_proj.bias.zero_()
        locator.key_proj.weight.copy_(torch.eye(DIMS))
        locator.key_proj.bias.zero_()
        locator.coord_proj.weight.zero_()
        locator.coord_proj.bias.zero_()
        locator.dense_box.bias.fill_(dense_bias)
    return locator


def region_memory(rows: slice, cols: slice) -> torch.Tensor:
    memory = torch.zeros(1, 64, DIMS)
    inside = torch.zeros(8, 8, dtype=torch.bool)
    inside[rows, cols] = True
    memory[0, inside.flatten(), 0] = 1.0
    return memory


def test_reference_is_the_box_read_around_the_attended_region():
    """All attention on rows 2..5 × columns 4..7: the mode is one of those tokens, the window
    (±0.08 of the canvas) holds it alone, and the box is that token's box: its centre ± the
    dense half-side (sigmoid(0) = 0.5, clipped to the canvas)."""
    locator = pointing_locator(mode_radius=0.01)
    query = torch.zeros(1, 1, DIMS)
    query[0, 0, 0] = 1.0
    memory = region_memory(slice(2, 6), slice(4, 8))
    box, log_weights, token_boxes = locator(query, memory, torch.zeros(1, 64, dtype=torch.bool),
                                            SIZES)
    assert log_weights.shape == (1, 1, 64) and token_boxes.shape == (1, 64, 4)
    mode = int(log_weights[0, 0].argmax())
    row, col = divmod(mode, 8)
    assert 2 <= row <= 5 and 4 <= col <= 7
    cx, cy = (col + 0.5) / 8, (row + 0.5) / 8
    x0, y0, x1, y1 = [min(max(v, 1e-3), 1 - 1e-3) for v in (cx - .5, cy - .5, cx + .5, cy + .5)]
    expected = torch.tensor([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0])
    torch.testing.assert_close(box[0, 0], expected.clamp(1e-3, 1 - 1e-3))


def test_window_averages_the_token_boxes_around_the_mode():
    """Equal attention on a 2×2 block and a window that covers it: the reference centre is the
    block's centre and the size the tokens' common size."""
    locator = pointing_locator(dense_bias=-2.0, mode_radius=0.2)
    query = torch.zeros(1, 1, DIMS)
    query[0, 0, 0] = 1.0
    memory = region_memory(slice(2, 4), slice(4, 6))
    box = locator(query, memory, torch.zeros(1, 64, dtype=torch.bool), SIZES)[0][0, 0]
    side = 2 * torch.sigmoid(torch.tensor(-2.0))
    torch.testing.assert_close(box, torch.stack([torch.tensor(5 / 8), torch.tensor(3 / 8),
                                                 side, side]), atol=1e-5, rtol=0)


def test_coordinate_term_points_at_the_leftmost_region():
    """Content equal on two regions; a query along the x-coordinate direction picks the left."""
    locator = pointing_locator()
    with torch.no_grad():
        locator.coord_proj.weight.zero_()
        locator.coord_proj.weight[1, 0] = -1.0  # key dim 1 = -(x - 0.5)
    query = torch.zeros(1, 1, DIMS)
    query[0, 0, 0] = 0.01  # content: both regions alike
    query[0, 0, 1] = 1.0  # "leftmost"
    memory = region_memory(slice(3, 5), slice(0, 2)) + region_memory(slice(3, 5), slice(6, 8))
    log_weights = locator(query, memory, torch.zeros(1, 64, dtype=torch.bool), SIZES)[1]
    assert int(log_weights[0, 0].argmax()) % 8 == 0


def test_losses_match_a_hand_computation():
    """loss_locate: -log(attention mass inside the group's boxes); dense losses: L1 (normalised
    xyxy, ×5) and GIoU (×2) of every finest token inside a box against that box."""
    locator = pointing_locator(dense_bias=-1.0)
    query = torch.zeros(1, 2, DIMS)
    query[0, :, 0] = 0.001  # nearly uniform attention
    memory = region_memory(slice(0, 8), slice(0, 8))
    _, log_weights, token_boxes = locator(query, memory, torch.zeros(1, 64, dtype=torch.bool),
                                          SIZES)
    boxes = torch.tensor([[0., 0., 16., 16.], [32., 32., 64., 48.]])  # canvas px
    losses = locator.loss(log_weights, token_boxes, SIZES, torch.ones(1, 2, dtype=torch.bool),
                          torch.tensor([[0, 1]]), targets(boxes, torch.tensor([0, 1])), META)
    centres = [((c + .5) * 8, (r + .5) * 8) for r in range(8) for c in range(8)]
    weights = log_weights.exp()[0]
    expected_locate, pred, gt = [], [], []
    for q, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
        inside = [n for n, (x, y) in enumerate(centres) if x0 <= x <= x1 and y0 <= y <= y1]
        expected_locate.append(-torch.log(weights[q, inside].sum()))
        pred.append(token_boxes[0, inside])
        gt.append(boxes[q].expand(len(inside), 4) / 64)
    torch.testing.assert_close(losses['loss_locate'], torch.stack(expected_locate).mean())
    pred, gt = torch.cat(pred), torch.cat(gt)
    torch.testing.assert_close(losses['loss_dense_bbox'],
                               5.0 * (pred - gt).abs().sum() / len(pred))
    from mmdet.structures.bbox import bbox_overlaps
    giou = bbox_overlaps(pred * 64, gt * 64, mode='giou', is_aligned=True)
    torch.testing.assert_close(losses['loss_dense_iou'], 2.0 * (1 - giou).mean())


@pytest.mark.parametrize('boxes', [torch.zeros(0, 4), torch.tensor([[1., 1., 3., 3.]])])
def test_nothing_supervised_gives_zeros_with_gradients(boxes):
    """No target, or one between the token centres: zero losses, every parameter in the graph."""
    locator = ReferenceLocator(DIMS)
    query, memory = torch.randn(1, 1, DIMS), torch.randn(1, 64, DIMS)
    _, log_weights, token_boxes = locator(query, memory, torch.zeros(1, 64, dtype=torch.bool),
                                          SIZES)
    losses = locator.loss(log_weights, token_boxes, SIZES, torch.ones(1, 1, dtype=torch.bool),
                          torch.zeros(1, 1, dtype=torch.long),
                          targets(boxes, torch.zeros(len(boxes), dtype=torch.long)), META)
    assert all(float(v) == 0.0 for v in losses.values())
    sum(losses.values()).backward()
    assert [n for n, p in locator.named_parameters() if p.grad is None] == []


def test_scene_boxes_train_the_reading_on_every_object_in_view():
    """With ``scene_bboxes`` in the targets' metainfo, the dense losses cover the tokens of every
    scene box (a neighbour the query does not refer to included); pointing still reads the
    targets."""
    locator = pointing_locator(dense_bias=-1.0)
    query = torch.zeros(1, 1, DIMS)
    memory = region_memory(slice(0, 8), slice(0, 8))
    _, log_weights, token_boxes = locator(query, memory, torch.zeros(1, 64, dtype=torch.bool),
                                          SIZES)
    target = torch.tensor([[0., 0., 16., 16.]])
    neighbour = torch.tensor([[32., 32., 64., 48.]])
    args = (log_weights, token_boxes, SIZES, torch.ones(1, 1, dtype=torch.bool),
            torch.zeros(1, 1, dtype=torch.long))
    group = torch.zeros(1, dtype=torch.long)
    targets_only = locator.loss(*args, targets(target, group), META)
    scene = locator.loss(
        *args, targets(target, group, scene_bboxes=torch.cat([target, neighbour])), META)
    both = locator.loss(*args, targets(torch.cat([target, neighbour]),
                                       torch.zeros(2, dtype=torch.long)), META)
    torch.testing.assert_close(scene['loss_locate'], targets_only['loss_locate'])
    for name in ('loss_dense_bbox', 'loss_dense_iou'):
        torch.testing.assert_close(scene[name], both[name])
        assert not torch.allclose(scene[name], targets_only[name])
