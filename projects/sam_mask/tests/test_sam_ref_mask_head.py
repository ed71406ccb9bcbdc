"""SAMRefMaskHead: a tiny random SAM (shapes, padding, group matching, gradients, the fake query,
inside REFVLM) and the weight loading against the official ViT-B architecture."""
import os.path as osp

import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData

from mmrefvlm.registry import MODELS
from mmrefvlm.testing import one_training_step, predict_first_test_record, routed_queries
from mmrefvlm.utils.config_refs import read_config
from projects.sam_mask.sam_mask import SAM_VIT_B, SAMRefMaskHead, load_sam_state

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
TINY_SAM_CONFIG = osp.join(REPO, 'projects', 'sam_mask', 'configs',
                           'refvlm_tinyllama_tinyconv_sam-tiny_synthetic.py')
LLM_DIMS, CANVAS = 24, 64
TINY = dict(image_encoder=dict(img_size=64, patch_size=8, embed_dim=32, depth=2, num_heads=2,
                               global_attn_indexes=(1, ), window_size=4),
            prompt_embed_dims=32,
            mask_decoder=dict(transformer=dict(depth=2, mlp_dim=64, num_heads=2),
                              num_multimask_outputs=3, iou_head_depth=3, iou_head_hidden_dim=32),
            image_mean=[127.5] * 3, image_std=[127.5] * 3)


def build_head(**overrides):
    torch.manual_seed(0)
    return MODELS.build(dict(type='SAMRefMaskHead', in_channels=LLM_DIMS, pyramid_channels=(8, ),
                             **dict(TINY, **overrides)))


def rect(y0, y1, x0, x1):
    mask = torch.zeros(CANVAS, CANVAS, dtype=torch.uint8)
    mask[y0:y1, x0:x1] = 1
    return mask


def make_batch():
    """Sample 0: groups (0, 0, 1) + a padded slot on a 64×64 image; sample 1: group (0, 0) + two
    padded slots on a 48×56 image; 64×64 canvas. Returns the head's loss_by_feat arguments after
    ``image_features`` and the images."""
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(2, 3, CANVAS, CANVAS, generator=gen)
    queries = torch.randn(2, 4, LLM_DIMS, generator=gen)
    query_mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    group_ids = torch.tensor([[0, 0, 1, -1], [0, 0, -1, -1]])
    metas = [dict(img_shape=(64, 64), pad_shape=(CANVAS, CANVAS)),
             dict(img_shape=(48, 56), pad_shape=(CANVAS, CANVAS))]
    masks0 = torch.stack([rect(0, 24, 0, 32), rect(32, 64, 32, 64), rect(8, 56, 40, 48)])
    masks1 = torch.stack([rect(0, 48, 0, 16), rect(16, 40, 24, 56)])
    targets = [InstanceData(masks=BitmapMasks(masks0.numpy(), CANVAS, CANVAS),
                            group_ids=torch.tensor([0, 0, 1])),
               InstanceData(masks=BitmapMasks(masks1.numpy(), CANVAS, CANVAS),
                            group_ids=torch.tensor([0, 0]))]
    return queries, query_mask, group_ids, targets, metas, images


def test_shapes_padding_and_predict():
    head = build_head()
    queries, query_mask, _, _, metas, images = make_batch()
    features = head.image_features(images, (), metas)
    assert [tuple(f.shape) for f in features] == [(2, 32, 8, 8)]
    logits = head(queries, query_mask, features, metas)
    assert logits.shape == (2, 4, 32, 32)
    with torch.no_grad():
        results = head.predict_by_feat(queries, query_mask, features, metas)
    assert [len(r) for r in results] == [3, 2]
    for r in results:
        assert r.masks.shape == (len(r), CANVAS, CANVAS) and r.bboxes.shape == (len(r), 4)
        assert bool(((r.scores >= 0) & (r.scores <= 1)).all())
    assert float(results[1].masks[:, 48:].abs().sum()) == 0  # canvas padding of sample 1
    # each query is decoded on its own: padded slots change nothing
    changed = queries.clone()
    changed[~query_mask] = 100.0
    torch.testing.assert_close(head(changed, query_mask, features, metas)[query_mask],
                               logits[query_mask])


def test_image_features_ignore_the_canvas_padding():
    head = build_head()
    _, _, _, _, metas, images = make_batch()
    noisy = images.clone()
    noisy[1, :, 48:] = 5.0
    torch.testing.assert_close(head.image_features(noisy, (), metas)[0],
                               head.image_features(images, (), metas)[0])


def test_swapped_targets_inside_a_group_give_the_same_loss():
    head = build_head()
    queries, query_mask, group_ids, targets, metas, images = make_batch()
    features = head.image_features(images, (), metas)
    losses = head.loss_by_feat(queries, query_mask, group_ids, features, targets, metas)
    assert set(losses) == {'loss_mask', 'loss_dice', 'loss_iou_pred'}
    swapped = [targets[0][[1, 0, 2]], targets[1][[1, 0]]]
    for name, value in head.loss_by_feat(queries, query_mask, group_ids, features, swapped,
                                         metas).items():
        torch.testing.assert_close(value, losses[name])


def test_loss_decreases_on_a_fixed_batch():
    head = build_head()
    queries, query_mask, group_ids, targets, metas, images = make_batch()
    features = head.image_features(images, (), metas)
    optim = torch.optim.Adam([p for p in head.parameters() if p.requires_grad], lr=1e-2)

    def total():
        losses = head.loss_by_feat(queries, query_mask, group_ids, features, targets, metas)
        return losses['loss_mask'] + losses['loss_dice']

    first = total().item()
    for _ in range(20):
        optim.zero_grad()
        total().backward()
        optim.step()
    assert total().item() < 0.7 * first


@pytest.mark.parametrize('with_queries', [True, False])
def test_every_trainable_parameter_gets_a_gradient_and_the_encoders_none(with_queries):
    head = build_head().train()
    queries, query_mask, group_ids, targets, metas, images = make_batch()
    queries.requires_grad_(True)
    routed = routed_queries(queries, query_mask, group_ids, no_queries=not with_queries)
    samples = [DetDataSample(gt_instances=t, metainfo=m) for t, m in zip(targets, metas)]
    losses = head.loss(routed, (), samples, images)
    if not with_queries:
        assert all(v.item() == 0 for v in losses.values())
    sum(losses.values()).backward()
    trainable = {n for n, p in head.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(('sam.mask_decoder.', 'query_proj.')) for n in trainable)
    assert [n for n, p in head.named_parameters() if p.requires_grad and p.grad is None] == []
    assert queries.grad is not None
    assert not head.sam.image_encoder.training and not head.sam.prompt_encoder.training


def test_predict_returns_original_pixels():
    head = build_head().eval()
    queries, query_mask, group_ids, _, metas, images = make_batch()
    metas = [dict(m, ori_shape=(2 * m['img_shape'][0], 2 * m['img_shape'][1]),
                  scale_factor=(0.5, 0.5)) for m in metas]
    samples = [DetDataSample(metainfo=m) for m in metas]
    results = head.predict(routed_queries(queries, query_mask, group_ids), (), samples, True, images)
    assert results[1].pred_instances.masks.shape == (2, 96, 112)
    assert results[1].pred_instances.masks.dtype == torch.bool
    with pytest.raises(ValueError, match='images'):
        head.predict(routed_queries(queries, query_mask, group_ids), (), samples, True, None)


@pytest.fixture(scope='module')
def vit_b_checkpoint(tmp_path_factory):
    """The official ViT-B ``Sam`` (segment_anything.build_sam_vit_b) state dict written to a
    file: the keys and shapes of ``sam_vit_b_01ec64.pth``. Built on the meta device and then
    given memory (filled with per-tensor constants), which keeps the test fast."""
    from segment_anything import sam_model_registry
    with torch.device('meta'):
        sam = sam_model_registry['vit_b']()
    state = sam.to_empty(device='cpu').state_dict()
    for i, value in enumerate(state.values()):
        value.fill_(i % 7)
    path = str(tmp_path_factory.mktemp('sam') / 'sam_vit_b.pth')
    torch.save(state, path)
    return path, state


def test_the_official_vit_b_checkpoint_loads_every_key(vit_b_checkpoint):
    path, state = vit_b_checkpoint
    with torch.device('meta'):  # full size: ViT-B image encoder, SAM's prompt encoder/decoder
        head = SAMRefMaskHead(in_channels=LLM_DIMS, pyramid_channels=(8, ),
                              image_encoder=SAM_VIT_B, sam_checkpoint=path)
    head.to_empty(device='cpu')
    assert load_sam_state(head, path) == sorted(state)
    own = head.sam.state_dict()
    assert all(torch.equal(own[key], value) for key, value in state.items())


def test_a_checkpoint_of_another_architecture_is_refused_by_name(tmp_path):
    path = str(tmp_path / 'other.pth')
    other = build_head(image_encoder=dict(TINY['image_encoder'], depth=1))
    torch.save(other.sam.state_dict(), path)
    head = build_head(sam_checkpoint=path)
    with pytest.raises(ValueError, match=r"missing keys \['image_encoder.blocks.1"):
        head.init_weights()
    build_head(image_encoder=dict(TINY['image_encoder'], depth=1),
               sam_checkpoint=path).init_weights()


def test_tiny_config_swaps_the_mask_head_and_trains_inside_refvlm(tiny_data, tiny_config_shrinker):
    """The project's tiny config, shrunk like the suite's: REFVLM hands the head its images;
    losses are finite and reach the LM; predict writes masks in original pixels."""
    cfg = tiny_config_shrinker(read_config(TINY_SAM_CONFIG, dict(data_root=tiny_data)))
    model, _, losses = one_training_step(cfg, 'res')
    assert isinstance(model.heads['mask'], SAMRefMaskHead)
    assert losses['mask.loss_dice'].item() > 0
    assert model.heads['mask'].sam.mask_decoder.mask_tokens.weight.grad is not None
    sample = predict_first_test_record(model, cfg, 'res')
    assert 'pred_instances' in sample
