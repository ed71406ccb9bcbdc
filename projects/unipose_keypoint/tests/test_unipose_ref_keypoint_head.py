"""UniPoseRefKeypointHead: a tiny random UniPose-style decoder (shapes, group matching,
gradients, the fake query, inside REFVLM) and the weight loading of a full-size head."""
import copy
import os.path as osp

import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from mmrefvlm.models.routers import RoutedQueries
from mmrefvlm.registry import DATASETS, MODELS
from mmrefvlm.utils.config_refs import read_config
from projects.unipose_keypoint.unipose_keypoint import UniPoseRefKeypointHead, load_head_state

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
TINY_CONFIG = osp.join(REPO, 'projects', 'unipose_keypoint', 'configs',
                       'refvlm_tinyllama_tinyconv_unipose-tiny_synthetic.py')
LLM_DIMS, CANVAS, K = 24, 64, 5
KEYPOINT_LOSSES = {'loss_keypoint', 'loss_oks', 'loss_visibility'}
LOSSES = {'loss_bbox', 'loss_iou', 'd0.loss_bbox', 'd0.loss_iou', 'enc.loss_bbox',
          'enc.loss_iou'} | KEYPOINT_LOSSES


def tiny_head_cfg():
    head = copy.deepcopy(read_config(TINY_CONFIG).model.heads.keypoint.to_dict())
    head.pop('_delete_', None)
    return dict(head, in_channels=LLM_DIMS, pyramid_channels=(8, ), image_size=CANVAS)


def build_head(**overrides):
    torch.manual_seed(0)
    head = MODELS.build(dict(tiny_head_cfg(), **overrides))
    head.init_weights()
    return head


def _keypoints(box):
    """K labelled keypoints inside ``box`` (xyxy), the last one unlabelled."""
    x0, y0, x1, y1 = box
    xs = torch.linspace(x0 + 1, x1 - 1, K)
    ys = torch.linspace(y0 + 1, y1 - 1, K)
    vis = torch.tensor([2.0] * (K - 1) + [0.0])
    return torch.stack([xs, ys, vis], -1)


def make_batch():
    """Sample 0: groups (0, 0, 1) + a padded slot on a 64×64 image; sample 1: group (0, 0) + two
    padded slots on a 48×56 image; 64×64 canvas."""
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(2, 3, CANVAS, CANVAS, generator=gen)
    queries = torch.randn(2, 4, LLM_DIMS, generator=gen)
    query_mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    group_ids = torch.tensor([[0, 0, 1, -1], [0, 0, -1, -1]])
    metas = [dict(img_shape=(64, 64), pad_shape=(CANVAS, CANVAS)),
             dict(img_shape=(48, 56), pad_shape=(CANVAS, CANVAS))]
    boxes = [[[0., 0, 32, 24], [32, 32, 64, 64], [40, 8, 48, 56]],
             [[0., 0, 16, 48], [24, 16, 56, 40]]]
    targets = [InstanceData(bboxes=torch.tensor(b), keypoints=torch.stack(
        [_keypoints(x) for x in b]), group_ids=torch.tensor(g))
        for b, g in zip(boxes, ([0, 0, 1], [0, 0]))]
    return queries, query_mask, group_ids, targets, metas, images


def _routed(queries, query_mask, group_ids):
    ref_index = torch.where(query_mask, query_mask.long().cumsum(1) - 1, -1)
    return RoutedQueries(queries, query_mask, group_ids, ref_index, [['a', 'b'], ['c']])


def test_shapes_and_predict():
    head = build_head().eval()
    queries, query_mask, _, _, metas, images = make_batch()
    features = head.image_features(images, (), metas)
    with torch.no_grad():
        results = head.predict_by_feat(queries, query_mask, features, metas)
    assert [len(r) for r in results] == [3, 2]
    for r in results:
        assert r.bboxes.shape == (len(r), 4) and r.keypoints.shape == (len(r), K, 3)
        assert bool(((r.keypoints[..., :2] >= 0) & (r.keypoints[..., :2] <= CANVAS)).all())


def test_swapped_targets_inside_a_group_give_the_same_loss():
    head = build_head()
    queries, query_mask, group_ids, targets, metas, images = make_batch()
    features = head.image_features(images, (), metas)
    losses = head.loss_by_feat(queries, query_mask, group_ids, features, targets, metas)
    assert set(losses) == LOSSES
    swapped = [targets[0][[1, 0, 2]], targets[1][[1, 0]]]
    for name, value in head.loss_by_feat(queries, query_mask, group_ids, features, swapped,
                                         metas).items():
        torch.testing.assert_close(value, losses[name])


def test_keypoint_loss_decreases_on_a_fixed_batch():
    head = build_head()
    queries, query_mask, group_ids, targets, metas, images = make_batch()
    features = head.image_features(images, (), metas)
    optim = torch.optim.Adam([p for p in head.parameters() if p.requires_grad], lr=1e-3)

    def total():
        losses = head.loss_by_feat(queries, query_mask, group_ids, features, targets, metas)
        return losses['loss_keypoint'] + losses['loss_bbox']

    first = total().item()
    for _ in range(6):
        optim.zero_grad()
        total().backward()
        optim.step()
    assert total().item() < 0.8 * first


@pytest.mark.parametrize('with_queries', [True, False])
def test_every_trainable_parameter_gets_a_gradient(with_queries):
    head = build_head().train()
    queries, query_mask, group_ids, targets, metas, images = make_batch()
    if with_queries:
        routed = _routed(queries, query_mask, group_ids)
    else:  # the fake query (paper App. C.2)
        routed = _routed(queries[:, :0], query_mask[:, :0], group_ids[:, :0])
    samples = [DetDataSample(gt_instances=t, metainfo=m) for t, m in zip(targets, metas)]
    losses = head.loss(routed, (), samples, images)
    assert set(losses) == LOSSES
    if not with_queries:
        assert all(v.item() == 0 for v in losses.values())
    sum(losses.values()).backward()
    assert [n for n, p in head.named_parameters() if p.requires_grad and p.grad is None] == []
    assert not any(p.requires_grad for p in head.gdino.backbone.parameters())


def test_predict_returns_original_pixels():
    head = build_head().eval()
    queries, query_mask, group_ids, _, metas, images = make_batch()
    metas = [dict(m, ori_shape=(2 * m['img_shape'][0], 2 * m['img_shape'][1]),
                  scale_factor=(0.5, 0.5)) for m in metas]
    samples = [DetDataSample(metainfo=m) for m in metas]
    results = head.predict(_routed(queries, query_mask, group_ids), (), samples, True, images)
    keypoints = results[1].pred_instances.keypoints
    assert keypoints.shape == (2, K, 3) and float(keypoints[..., 0].max()) <= 2 * CANVAS


def test_a_full_size_head_checkpoint_loads_every_key(tmp_path):
    """The COCO head of the stage-3 config (Swin-T instance stage, 17 keypoints) written from a
    random full-size module, read back by the loading code as a REFVLM checkpoint."""
    path = str(tmp_path / 'unipose.pth')
    with torch.device('meta'):
        source = UniPoseRefKeypointHead(in_channels=LLM_DIMS, pyramid_channels=(8, ),
                                        num_keypoints=17, keypoint_sigmas=[0.05] * 17)
    state = source.to_empty(device='cpu').state_dict()
    for i, value in enumerate(state.values()):
        value.fill_(i % 7)
    torch.save(dict(state_dict={f'heads.keypoint.{k}': v for k, v in state.items()}), path)
    with torch.device('meta'):
        head = UniPoseRefKeypointHead(in_channels=LLM_DIMS, pyramid_channels=(8, ),
                                      num_keypoints=17, keypoint_sigmas=[0.05] * 17)
    head.to_empty(device='cpu')
    assert load_head_state(head, path) == sorted(state)
    own = head.state_dict()
    assert all(torch.equal(own[k], v) for k, v in state.items())
    with pytest.raises(ValueError, match='missing keys'):
        load_head_state(build_head(), path)


def test_tiny_config_swaps_the_keypoint_head_and_trains_inside_refvlm(tiny_data,
                                                                      tiny_config_shrinker):
    cfg = tiny_config_shrinker(read_config(TINY_CONFIG, dict(data_root=tiny_data)))
    init_default_scope('mmrefvlm')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    assert isinstance(model.heads['keypoint'], UniPoseRefKeypointHead)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    picked = [i for i in range(len(dataset))
              if dataset.get_data_info(i)['task'] == 'keypoint'][:2]
    data = model.data_preprocessor(pseudo_collate([dataset[i] for i in picked]), True)
    losses = model.loss(**data)
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses['keypoint.loss_keypoint'].item() > 0
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert model.heads['keypoint'].keypoint_embed.weight.grad is not None
    model.eval()
    test_set = DATASETS.build(copy.deepcopy(cfg.test_dataloader.dataset))
    batch = model.data_preprocessor(pseudo_collate([test_set[0]]), False)
    with torch.no_grad():
        assert 'pred_instances' in model.predict(**batch)[0]
