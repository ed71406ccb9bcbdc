"""GroundingDINORefBoxHead: a tiny random Grounding DINO (shapes, padding, group matching,
gradients, the fake query, inside REFVLM) and the weight loading against MMDetection's own
full-size Grounding DINO (Swin-T)."""
import os.path as osp

import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from mmrefvlm.registry import MODELS
from mmrefvlm.testing import one_training_step, predict_first_test_record, routed_queries
from mmrefvlm.utils.config_refs import read_config
from projects.grounding_dino_box.grounding_dino_box import (GDINO_BERT,
                                                            GroundingDINORefBoxHead,
                                                            load_gdino_state)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
TINY_GDINO_CONFIG = osp.join(REPO, 'projects', 'grounding_dino_box', 'configs',
                             'refvlm_tinyllama_tinyconv_gdino-tiny_synthetic.py')
LLM_DIMS, CANVAS = 24, 64
TINY = dict(
    embed_dims=32,
    backbone=dict(type='SwinTransformer', embed_dims=16, depths=[1, 1, 1, 1],
                  num_heads=[1, 2, 2, 4], window_size=4, out_indices=(1, 2, 3),
                  drop_path_rate=0.0, convert_weights=False),
    neck=dict(type='ChannelMapper', kernel_size=1, act_cfg=None, bias=True,
              norm_cfg=dict(type='GN', num_groups=8), num_outs=4),
    encoder=dict(num_layers=1,
                 layer_cfg=dict(self_attn_cfg=dict(num_heads=4, num_points=2),
                                ffn_cfg=dict(feedforward_channels=64)),
                 text_layer_cfg=dict(self_attn_cfg=dict(num_heads=4),
                                     ffn_cfg=dict(feedforward_channels=64)),
                 fusion_layer_cfg=dict(embed_dim=32, num_heads=4, init_values=1e-4)),
    decoder=dict(num_layers=2, return_intermediate=True,
                 layer_cfg=dict(self_attn_cfg=dict(num_heads=4),
                                cross_attn_text_cfg=dict(num_heads=4),
                                cross_attn_cfg=dict(num_heads=4, num_points=2),
                                ffn_cfg=dict(feedforward_channels=64)),
                 post_norm_cfg=None),
    image_mean=[127.5] * 3, image_std=[127.5] * 3)


def build_head(**overrides):
    torch.manual_seed(0)
    init_default_scope('mmrefvlm')
    head = MODELS.build(dict(type='GroundingDINORefBoxHead', in_channels=LLM_DIMS,
                             pyramid_channels=(8, ), **dict(TINY, **overrides)))
    head.gdino.init_weights()  # Grounding DINO's init (MMEngine's init_weights also logs it)
    return head


@pytest.fixture(scope='module')
def head():
    return build_head()


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
    targets = [InstanceData(bboxes=torch.tensor([[0., 0, 32, 24], [32, 32, 64, 64],
                                                 [40, 8, 48, 56]]),
                            group_ids=torch.tensor([0, 0, 1])),
               InstanceData(bboxes=torch.tensor([[0., 0, 16, 48], [24, 16, 56, 40]]),
                            group_ids=torch.tensor([0, 0]))]
    return queries, query_mask, group_ids, targets, metas, images


def test_shapes_padding_and_predict(head):
    queries, query_mask, _, _, metas, images = make_batch()
    head.eval()
    with torch.no_grad():
        features = head.image_features(images, (), metas)
        assert [tuple(f.shape) for f in features] == [(2, 32, 8, 8), (2, 32, 4, 4),
                                                      (2, 32, 2, 2), (2, 32, 1, 1)]
        boxes = head(queries, query_mask, features, metas)
        assert boxes.shape == (2, 2, 4, 4)
        results = head.predict_by_feat(queries, query_mask, features, metas)
        # each query is decoded by itself: padded slots change nothing
        changed = queries.clone()
        changed[~query_mask] = 100.0
        torch.testing.assert_close(head(changed, query_mask, features, metas)[:, query_mask],
                                   boxes[:, query_mask])
    assert [len(r) for r in results] == [3, 2]
    for r in results:
        assert bool(((r.bboxes >= 0) & (r.bboxes <= CANVAS)).all())
        assert bool(((r.scores >= 0) & (r.scores <= 1)).all())


def test_image_features_ignore_the_canvas_padding(head):
    _, _, _, _, metas, images = make_batch()
    noisy = images.clone()
    noisy[1, :, 48:] = 5.0
    with torch.no_grad():
        for clean, dirty in zip(head.image_features(images, (), metas),
                                head.image_features(noisy, (), metas)):
            torch.testing.assert_close(clean, dirty)


def test_swapped_targets_inside_a_group_give_the_same_loss(head):
    queries, query_mask, group_ids, targets, metas, images = make_batch()
    with torch.no_grad():
        features = head.image_features(images, (), metas)
        losses = head.loss_by_feat(queries, query_mask, group_ids, features, targets, metas)
        assert set(losses) == set(head.loss_keys())
        swapped = [targets[0][[1, 0, 2]], targets[1][[1, 0]]]
        for name, value in head.loss_by_feat(queries, query_mask, group_ids, features, swapped,
                                             metas).items():
            torch.testing.assert_close(value, losses[name])


def test_loss_decreases_on_a_fixed_batch():
    """Training on every loss of the head (the selection and the intermediate layers are what
    place the boxes first) lowers the last layer's box loss."""
    head = build_head().train()
    queries, query_mask, group_ids, targets, metas, images = make_batch()
    optim = torch.optim.Adam([p for p in head.parameters() if p.requires_grad], lr=2e-3)

    def losses():
        features = head.image_features(images, (), metas)
        return head.loss_by_feat(queries, query_mask, group_ids, features, targets, metas)

    first = losses()
    for _ in range(10):
        optim.zero_grad()
        sum(losses().values()).backward()
        optim.step()
    last = losses()
    assert (last['loss_bbox'] + last['loss_iou']).item() < 0.7 * (
        first['loss_bbox'] + first['loss_iou']).item()


@pytest.mark.parametrize('with_queries', [True, False])
def test_every_trainable_parameter_gets_a_gradient_and_the_swin_none(with_queries):
    head = build_head(freeze_backbone=True).train()
    queries, query_mask, group_ids, targets, metas, images = make_batch()
    queries.requires_grad_(True)
    routed = routed_queries(queries, query_mask, group_ids, no_queries=not with_queries)
    samples = [DetDataSample(gt_instances=t, metainfo=m) for t, m in zip(targets, metas)]
    losses = head.loss(routed, (), samples, images)
    assert set(losses) == set(head.loss_keys())
    assert all(torch.isfinite(v) for v in losses.values())
    if not with_queries:
        assert all(v.item() == 0 for v in losses.values())
    sum(losses.values()).backward()
    trainable = {n for n, p in head.named_parameters() if p.requires_grad}
    assert trainable and not any(n.startswith('gdino.backbone.') for n in trainable)
    assert [n for n, p in head.named_parameters() if p.requires_grad and p.grad is None] == []
    assert queries.grad is not None
    assert not head.gdino.backbone.training and head.gdino.decoder.training


def test_predict_returns_original_pixels(head):
    queries, query_mask, group_ids, _, metas, images = make_batch()
    metas = [dict(m, ori_shape=(2 * m['img_shape'][0], 2 * m['img_shape'][1]),
                  scale_factor=(0.5, 0.5)) for m in metas]
    samples = [DetDataSample(metainfo=m) for m in metas]
    results = head.eval().predict(routed_queries(queries, query_mask, group_ids), (), samples, True,
                                  images)
    bboxes = results[1].pred_instances.bboxes
    assert bboxes.shape == (2, 4)
    assert bool((bboxes[:, 0::2] <= 112).all() and (bboxes[:, 1::2] <= 96).all())
    with pytest.raises(ValueError, match='images'):
        head.predict(routed_queries(queries, query_mask, group_ids), (), samples, True, None)


@pytest.fixture(scope='module')
def tiny_bert(tmp_path_factory):
    """A local ``bert-base-uncased``-shaped folder at toy size (WordPiece vocabulary, one
    16-wide layer, random weights), for Grounding DINO's BERT path."""
    from transformers import BertConfig, BertModel, BertTokenizerFast
    folder = tmp_path_factory.mktemp('bert')
    vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', '.', '?', 'the', 'red', 'blue',
             'square', 'circle', 'left', 'one']
    (folder / 'vocab.txt').write_text('\n'.join(vocab) + '\n')
    BertTokenizerFast(vocab_file=str(folder / 'vocab.txt')).save_pretrained(folder)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                         num_attention_heads=2, intermediate_size=32,
                         max_position_embeddings=64)).save_pretrained(folder)
    return dict(GDINO_BERT, name=str(folder))


def test_the_phrases_condition_the_boxes_through_grounding_dinos_bert(tiny_bert, tmp_path):
    head = build_head(text_encoder=tiny_bert, freeze_backbone=True).train()
    queries, query_mask, group_ids, targets, metas, images = make_batch()
    routed = routed_queries(queries, query_mask, group_ids)
    routed.phrases = [['the red square', 'one blue circle'], ['the left circle']]
    samples = [DetDataSample(gt_instances=t, metainfo=m) for t, m in zip(targets, metas)]
    losses = head.loss(routed, (), samples, images)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    trainable = {n for n, p in head.named_parameters() if p.requires_grad}
    assert 'gdino.text_feat_map.weight' in trainable
    assert not any(n.startswith('gdino.language_model.') for n in trainable)
    assert [n for n, p in head.named_parameters() if p.requires_grad and p.grad is None] == []
    head.eval()
    samples = [DetDataSample(metainfo=dict(m, ori_shape=m['img_shape'], scale_factor=(1, 1)))
               for m in metas]
    boxes = head.predict(routed, (), samples, True, images)[0].pred_instances.bboxes
    routed.phrases = [['one blue circle', 'the red square'], ['the left circle']]
    other = head.predict(routed, (), samples, True, images)[0].pred_instances.bboxes
    assert not torch.allclose(boxes, other)
    # BERT's and text_feat_map's keys are part of the checkpoint
    path = str(tmp_path / 'with_bert.pth')
    torch.save(head.gdino.state_dict(), path)
    loaded = load_gdino_state(build_head(text_encoder=tiny_bert), path)
    assert 'text_feat_map.weight' in loaded and any('language_model.' in k for k in loaded)


@pytest.fixture(scope='module')
def mmdet_swin_t_checkpoint(tmp_path_factory, tiny_bert):
    """MMDetection's own ``GroundingDINO`` of its Swin-T config (the architecture of
    ``groundingdino_swint_ogc_mmdet-822d7e9d.pth``), built at full size but for its BERT (the
    toy one: ``bert-base-uncased`` is not reachable), its state dict written to a file as
    per-tensor constants (each an expanded scalar: the file stays small)."""
    import mmdet
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs',
                                   'grounding_dino',
                                   'grounding_dino_swin-t_pretrain_obj365_goldg_cap4m.py'))
    init_default_scope('mmdet')
    detector = MMDET_MODELS.build(dict(cfg.model, language_model=tiny_bert))
    state = {key: torch.full((), float(i % 7)).expand(value.shape)
             for i, (key, value) in enumerate(detector.state_dict().items())}
    path = str(tmp_path_factory.mktemp('gdino') / 'gdino_swin_t.pth')
    torch.save(dict(meta=dict(), state_dict=state), path)
    return path, state


@pytest.mark.parametrize('with_bert', [True, False])
def test_mmdetections_swin_t_checkpoint_loads_every_key(mmdet_swin_t_checkpoint, tiny_bert,
                                                        with_bert):
    path, state = mmdet_swin_t_checkpoint
    init_default_scope('mmrefvlm')
    head = GroundingDINORefBoxHead(  # full size
        in_channels=LLM_DIMS, pyramid_channels=(8, ),
        text_encoder=tiny_bert if with_bert else None)
    loaded = load_gdino_state(head, path)
    unused = ('query_embedding.', 'dn_query_generator.') + (
        () if with_bert else ('language_model.', 'text_feat_map.'))
    assert loaded == sorted(key for key in state if not key.startswith(unused))
    assert loaded == sorted(head.gdino.state_dict())  # nothing missing
    assert any(key.startswith('language_model.') for key in loaded) == with_bert
    own = head.gdino.state_dict()
    assert all(torch.equal(own[key], state[key]) for key in loaded)


def test_a_checkpoint_of_another_architecture_is_refused_by_name(tmp_path):
    path = str(tmp_path / 'other.pth')
    other = build_head(decoder=dict(TINY['decoder'], num_layers=1))
    torch.save(other.gdino.state_dict(), path)
    with pytest.raises(ValueError, match=r"missing keys \['bbox_head.reg_branches.2"):
        build_head(gdino_checkpoint=path).init_weights()
    build_head(decoder=dict(TINY['decoder'], num_layers=1), gdino_checkpoint=path).init_weights()


def test_tiny_config_swaps_the_box_head_and_trains_inside_refvlm(tiny_data, tiny_config_shrinker):
    """The project's tiny config, shrunk like the suite's: REFVLM hands the head its images;
    losses are finite and reach the LM; predict writes boxes in original pixels."""
    cfg = tiny_config_shrinker(read_config(TINY_GDINO_CONFIG, dict(data_root=tiny_data)))
    model, _, losses = one_training_step(cfg, 'rec')
    assert isinstance(model.heads['box'], GroundingDINORefBoxHead)
    assert losses['box.loss_iou'].item() > 0
    assert model.heads['box'].query_proj.layers[0].weight.grad is not None
    sample = predict_first_test_record(model, cfg, 'rec')
    assert 'pred_instances' in sample
