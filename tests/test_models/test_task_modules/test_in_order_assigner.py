"""InOrderAssigner (paper Table 1's baseline): the k-th <REF> of a group takes the group's k-th
target, whatever the predictions; groups stay apart."""
import torch
from mmengine.structures import InstanceData

from mmrefvlm.models.task_modules import InOrderAssigner
from mmrefvlm.registry import MODELS, TASK_UTILS


def test_matches_each_group_in_answer_order():
    assigner = TASK_UTILS.build(dict(type='InOrderAssigner'))
    # sample 0: group 0 has 2 queries and 3 targets, group 1 one of each (targets interleaved);
    # sample 1: nothing to match
    pred_gids = [torch.tensor([0, 1, 0]), torch.zeros(0, dtype=torch.long)]
    gt_gids = [torch.tensor([1, 0, 0, 0]), torch.zeros(0, dtype=torch.long)]
    preds = [InstanceData(bboxes=torch.rand(3, 4)), InstanceData(bboxes=torch.zeros(0, 4))]
    gts = [InstanceData(bboxes=torch.rand(4, 4)), InstanceData(bboxes=torch.zeros(0, 4))]
    (pred_inds, gt_inds), (none_pred, none_gt) = assigner.assign_batch(
        preds, gts, pred_gids, gt_gids, [{}, {}])
    assert pred_inds.tolist() == [0, 1, 2] and gt_inds.tolist() == [1, 0, 2]
    assert len(none_pred) == 0 and len(none_gt) == 0


def test_the_box_head_takes_it_by_config():
    box = MODELS.build(dict(type='RefBoxHead', in_channels=8, pyramid_channels=(8, ),
                            num_groups=8, assigner=dict(type='InOrderAssigner'),
                            decoder=dict(num_layers=1, layer_cfg=dict(
                                self_attn_cfg=dict(embed_dims=16, num_heads=2),
                                cross_attn_cfg=dict(embed_dims=16, num_heads=2),
                                ffn_cfg=dict(embed_dims=16, feedforward_channels=32)))))
    assert isinstance(box.assigner, InOrderAssigner)
    queries = torch.randn(1, 2, 8)
    mask = torch.ones(1, 2, dtype=torch.bool)
    group_ids = torch.zeros(1, 2, dtype=torch.long)
    pyramid = [torch.randn(1, 8, 4, 4)]
    metas = [dict(img_shape=(32, 32), pad_shape=(32, 32))]
    boxes = torch.tensor([[2., 2., 10., 10.], [16., 16., 30., 30.]])
    target = [InstanceData(bboxes=boxes, group_ids=torch.zeros(2, dtype=torch.long))]
    swapped = [InstanceData(bboxes=boxes.flip(0), group_ids=torch.zeros(2, dtype=torch.long))]
    with torch.no_grad():
        ordered = box.loss_by_feat(queries, mask, group_ids, pyramid, target, metas)
        reversed_ = box.loss_by_feat(queries, mask, group_ids, pyramid, swapped, metas)
    # in-order matching depends on the order of a group's targets (group matching does not)
    assert not torch.allclose(ordered['loss_bbox'], reversed_['loss_bbox'])
