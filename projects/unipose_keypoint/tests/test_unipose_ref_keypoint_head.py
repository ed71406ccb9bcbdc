"""UniPoseRefKeypointHead: a tiny random decoder (shapes, padding, group matching, gradients,
the fake query, inside REFVLM) and the weight loading against a full-size decoder."""
import copy
import os.path as osp

import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from mmrefvlm.registry import MODELS
from mmrefvlm.testing import one_training_step, predict_first_test_record, routed_queries
from mmrefvlm.utils.config_refs import read_config
from projects.unipose_keypoint.unipose_keypoint import (KeypointNamePrompts,
                                                        UniPoseRefKeypointHead,
                                                        load_unipose_state)

CONFIGS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs')
TINY_CONFIG = osp.join(CONFIGS, 'refvlm_tinyllama_tinyconv_unipose-tiny_synthetic.py')
STAGE3_CONFIG = osp.join(CONFIGS, 'refvlm_vicuna7b_clipl-convnextl_stage3-unipose_vtinstruct.py')
LLM_DIMS, CANVAS = 24, 64
NAMES = ['left eye', 'right eye', 'nose']
TINY_DECODER = dict(embed_dims=32, num_heads=2, num_points=2, ffn_ratio=2, num_encoder_layers=1,
                    num_instance_layers=1, num_keypoint_layers=2, num_groups=8,
                    num_name_buckets=16)


def build_head(decoder=None, **overrides):
    """The tiny head; ``decoder`` entries change the tiny decoder's."""
    torch.manual_seed(0)
    return MODELS.build(dict(type='UniPoseRefKeypointHead', in_channels=LLM_DIMS,
                             pyramid_channels=(8, 16), keypoint_names=NAMES,
                             keypoint_sigmas=[0.05] * 3,
                             decoder=dict(TINY_DECODER, **(decoder or {})), **overrides))


def instance(x0, y0, x1, y1, visible=(2, 2, 0)):
    """A box (xyxy canvas px) and three keypoints inside it, the last one unlabelled."""
    kpts = torch.tensor([[x0 + (x1 - x0) * 0.3, y0 + (y1 - y0) * 0.3],
                         [x0 + (x1 - x0) * 0.7, y0 + (y1 - y0) * 0.3],
                         [x0 + (x1 - x0) * 0.5, y0 + (y1 - y0) * 0.6]])
    return torch.tensor([x0, y0, x1, y1], dtype=torch.float32), torch.cat(
        [kpts, torch.tensor(visible, dtype=torch.float32)[:, None]], -1)


def make_batch():
    """Sample 0: groups (0, 0, 1) + a padded slot on a 64×64 image; sample 1: group (0, 0) + two
    padded slots on a 48×56 image; 64×64 canvas, a two-level pyramid (strides 4, 8). Returns
    loss_by_feat's arguments."""
    gen = torch.Generator().manual_seed(0)
    pyramid = (torch.randn(2, 8, 16, 16, generator=gen), torch.randn(2, 16, 8, 8, generator=gen))
    queries = torch.randn(2, 4, LLM_DIMS, generator=gen)
    query_mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    group_ids = torch.tensor([[0, 0, 1, -1], [0, 0, -1, -1]])
    metas = [dict(img_shape=(64, 64), pad_shape=(CANVAS, CANVAS)),
             dict(img_shape=(48, 56), pad_shape=(CANVAS, CANVAS))]
    targets = []
    for boxes, groups in (([(4, 4, 28, 30), (34, 30, 60, 62), (10, 36, 30, 60)], [0, 0, 1]),
                          ([(2, 2, 20, 40), (26, 10, 54, 44)], [0, 0])):
        made = [instance(*box) for box in boxes]
        targets.append(InstanceData(bboxes=torch.stack([m[0] for m in made]),
                                    keypoints=torch.stack([m[1] for m in made]),
                                    group_ids=torch.tensor(groups)))
    return queries, query_mask, group_ids, pyramid, targets, metas


def test_shapes_padding_and_predict():
    head = build_head().eval()
    queries, query_mask, _, pyramid, _, metas = make_batch()
    outputs, aux = head.forward_with_aux(queries, query_mask, pyramid, metas)
    assert outputs.shape == (2, 2, 4, 4 + 3 * 3)  # keypoint layers, B, Q, box + K × (x, y, v)
    assert aux['instance_boxes'].shape == (1, 2, 4, 4)
    with torch.no_grad():
        results = head.predict_by_feat(queries, query_mask, pyramid, metas)
    assert [len(r) for r in results] == [3, 2]
    for r in results:
        assert r.bboxes.shape == (len(r), 4) and r.keypoints.shape == (len(r), 3, 3)
        assert bool(((r.keypoints >= 0) & (r.keypoints <= CANVAS)).all())
        assert bool((r.keypoints[..., 2] <= 1).all()) and bool((r.scores == 1).all())
    # padded slots change nothing: their values, and the canvas padding of sample 1
    changed = queries.clone()
    changed[~query_mask] = 100.0
    torch.testing.assert_close(head(changed, query_mask, pyramid, metas)[:, query_mask],
                               outputs[:, query_mask])
    noisy = [level.clone() for level in pyramid]
    noisy[0][1, :, 12:] = 5.0
    noisy[1][1, :, 6:] = 5.0
    torch.testing.assert_close(head(queries, query_mask, noisy, metas)[:, 1],
                               outputs[:, 1])


def test_keypoint_name_prompts_are_sums_of_word_embeddings():
    prompts = KeypointNamePrompts(['left_eye', 'Left eye', 'right eye', 'left', 'right'], 8,
                                  1024)()
    torch.testing.assert_close(prompts[0], prompts[1])
    assert not torch.allclose(prompts[0], prompts[2])
    torch.testing.assert_close(prompts[0] - prompts[2], prompts[3] - prompts[4])
    with pytest.raises(ValueError, match='name with a word'):
        KeypointNamePrompts(['nose', '--'], 8, 16)


def test_swapped_targets_inside_a_group_give_the_same_loss():
    head = build_head()
    queries, query_mask, group_ids, pyramid, targets, metas = make_batch()
    losses = head.loss_by_feat(queries, query_mask, group_ids, pyramid, targets, metas)
    assert set(losses) == set(head.loss_keys())
    assert {'loss_keypoint', 'loss_oks', 'loss_visibility', 'd0.loss_oks',
            'inst0.loss_bbox'} <= set(losses)
    swapped = [targets[0][[1, 0, 2]], targets[1][[1, 0]]]
    for name, value in head.loss_by_feat(queries, query_mask, group_ids, pyramid, swapped,
                                         metas).items():
        torch.testing.assert_close(value, losses[name])


def test_loss_decreases_on_a_fixed_batch():
    head = build_head()
    queries, query_mask, group_ids, pyramid, targets, metas = make_batch()
    optim = torch.optim.Adam(head.parameters(), lr=2e-3)

    def total():
        return sum(head.loss_by_feat(queries, query_mask, group_ids, pyramid, targets,
                                     metas).values())

    first = total().item()
    for _ in range(30):
        optim.zero_grad()
        total().backward()
        optim.step()
    assert total().item() < 0.6 * first


@pytest.mark.parametrize('with_queries', [True, False])
def test_every_parameter_gets_a_gradient(with_queries):
    head = build_head().train()
    queries, query_mask, group_ids, pyramid, targets, metas = make_batch()
    queries.requires_grad_(True)
    routed = routed_queries(queries, query_mask, group_ids, no_queries=not with_queries)
    samples = [DetDataSample(gt_instances=t, metainfo=m) for t, m in zip(targets, metas)]
    losses = head.loss(routed, pyramid, samples)
    assert set(losses) == set(head.loss_keys())
    if not with_queries:
        assert all(v.item() == 0 for v in losses.values())
    sum(losses.values()).backward()
    assert [n for n, p in head.named_parameters() if p.grad is None] == []
    assert queries.grad is not None


def test_predict_returns_original_pixels():
    head = build_head().eval()
    queries, query_mask, group_ids, pyramid, _, metas = make_batch()
    metas = [dict(m, ori_shape=(2 * m['img_shape'][0], 2 * m['img_shape'][1]),
                  scale_factor=(0.5, 0.5)) for m in metas]
    canvas = head.predict_by_feat(queries, query_mask, pyramid, metas)
    samples = [DetDataSample(metainfo=m) for m in metas]
    results = head.predict(routed_queries(queries, query_mask, group_ids), pyramid, samples, True)
    pred = results[1].pred_instances
    assert pred.keypoints.shape == (2, 3, 3) and pred.ref_index.tolist() == [0, 1]
    torch.testing.assert_close(pred.keypoints[..., :2], 2 * canvas[1].keypoints[..., :2])
    assert float(pred.bboxes[:, 0::2].max()) <= 112 and float(pred.bboxes[:, 1::2].max()) <= 96


@pytest.fixture(scope='module')
def full_size_checkpoint(tmp_path_factory):
    """The stage-3 config's decoder (UniPose's size: 256 wide, 6 encoder, 2 instance, 4 keypoint
    layers, 17 COCO keypoints) over ConvNeXt-L's pyramid, randomly initialised and written as a
    REFVLM checkpoint would hold it (``state_dict``, ``heads.keypoint.unipose.``)."""
    cfg = read_config(STAGE3_CONFIG).model.heads.keypoint
    cfg = dict(cfg, in_channels=LLM_DIMS, pyramid_channels=(192, 384, 768, 1536))
    torch.manual_seed(1)
    head = MODELS.build(copy.deepcopy(cfg))
    state = head.unipose.state_dict()
    path = str(tmp_path_factory.mktemp('unipose') / 'unipose_full.pth')
    torch.save(dict(meta=dict(), state_dict={f'heads.keypoint.unipose.{k}': v
                                             for k, v in state.items()}), path)
    return path, state, cfg


def test_the_full_size_checkpoint_loads_every_key(full_size_checkpoint):
    path, state, cfg = full_size_checkpoint
    torch.manual_seed(2)
    head = MODELS.build(dict(cfg, unipose_checkpoint=path))
    assert head.unipose.embed_dims == 256 and head.num_keypoints == 17
    assert (head.num_instance_layers, head.num_keypoint_layers) == (2, 4)
    head.init_weights()
    own = head.unipose.state_dict()
    assert sorted(own) == sorted(state) and len(own) > 300
    assert all(torch.equal(own[key], value) for key, value in state.items())
    assert load_unipose_state(head, path) == sorted(state)


def test_a_checkpoint_of_another_architecture_is_refused_by_name(tmp_path):
    path = str(tmp_path / 'other.pth')
    torch.save(build_head(dict(num_keypoint_layers=1)).unipose.state_dict(), path)
    with pytest.raises(ValueError, match=r"missing keys \['keypoint_box_branches.1"):
        build_head(unipose_checkpoint=path).init_weights()
    build_head(dict(num_keypoint_layers=1), unipose_checkpoint=path).init_weights()
    official = str(tmp_path / 'unipose_swint.pth')
    torch.save(dict(model={'transformer.decoder.layers.0.norm1.weight': torch.ones(256),
                           'backbone.0.body.patch_embed.proj.weight': torch.ones(1)}), official)
    with pytest.raises(ValueError, match='official UniPose'):
        build_head(unipose_checkpoint=official).init_weights()


def test_tiny_config_swaps_the_keypoint_head_and_trains_inside_refvlm(tiny_data,
                                                                      tiny_config_shrinker):
    """The project's tiny config, shrunk like the suite's: finite losses that reach the LM; the
    head predicts keypoints in original pixels for the routed <REF>s; generation runs."""
    cfg = tiny_config_shrinker(read_config(TINY_CONFIG, dict(data_root=tiny_data)))
    assert cfg.model.heads.keypoint.decoder.embed_dims == 32  # the shrinker's width
    model, data, losses = one_training_step(cfg, 'keypoint')
    assert isinstance(model.heads['keypoint'], UniPoseRefKeypointHead)
    assert losses['keypoint.loss_oks'].item() > 0
    assert model.heads['keypoint'].unipose.keypoint_prompts.words.weight.grad is not None
    model.eval()
    with torch.no_grad():  # the head's predictions on the teacher-forced <REF> states
        out, pyramid = model.forward_language(data['inputs'])
        routed = model.router.route(data['inputs']['input_ids'], out['hidden'],
                                    model.neck.special_ids, model.neck.decode,
                                    valid=data['inputs']['labels'] != -100)['keypoint']
        results = model.heads['keypoint'].predict(routed, pyramid, data['data_samples'], True,
                                                  data['inputs']['images'])
    for result, sample in zip(results, data['data_samples']):
        ori_h, ori_w = sample.metainfo['ori_shape']
        pred = result.pred_instances
        assert len(pred) == len(sample.gt_instances) > 0
        assert pred.keypoints.shape == (len(pred), 5, 3)
        assert float(pred.bboxes[:, 0::2].max()) <= ori_w
        assert float(pred.bboxes[:, 1::2].max()) <= ori_h
    sample = predict_first_test_record(model, cfg, 'keypoint')
    assert 'pred_instances' in sample
