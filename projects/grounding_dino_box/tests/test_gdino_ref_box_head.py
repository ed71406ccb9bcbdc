"""GroundingDINORefBoxHead: a tiny random Grounding DINO (shapes, group matching, gradients, the
fake query, inside REFVLM) and the weight loading against MMDetection's full Swin-T
GroundingDINO."""
import copy
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from torch import nn

from mmrefvlm.models.routers import RoutedQueries
from mmrefvlm.registry import DATASETS, MODELS
from mmrefvlm.utils.config_refs import read_config
from projects.grounding_dino_box.grounding_dino_box import (GroundingDINORefBoxHead,
                                                            load_gdino_state)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
TINY_CONFIG = osp.join(REPO, 'projects', 'grounding_dino_box', 'configs',
                       'refvlm_tinyllama_tinyconv_gdino-tiny_synthetic.py')
LLM_DIMS, CANVAS = 24, 64
LOSSES = {'loss_bbox', 'loss_iou', 'd0.loss_bbox', 'd0.loss_iou', 'enc.loss_bbox',
          'enc.loss_iou'}


def tiny_head_cfg():
    head = copy.deepcopy(read_config(TINY_CONFIG).model.heads.box.to_dict())
    head.pop('_delete_', None)
    return dict(head, in_channels=LLM_DIMS, pyramid_channels=(8, ), image_size=CANVAS)


def build_head(**overrides):
    torch.manual_seed(0)
    head = MODELS.build(dict(tiny_head_cfg(), **overrides))
    head.init_weights()
    return head


def make_batch():
    """Sample 0: groups (0, 0, 1) + a padded slot on a 64×64 image; sample 1: group (0, 0) + two
    padded slots on a 48×56 image; 64×64 canvas; boxes xyxy canvas px."""
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


def _routed(queries, query_mask, group_ids):
    ref_index = torch.where(query_mask, query_mask.long().cumsum(1) - 1, -1)
    return RoutedQueries(queries, query_mask, group_ids, ref_index, [['a', 'b'], ['c']])


def test_shapes_padding_and_predict():
    head = build_head().eval()
    queries, query_mask, _, _, metas, images = make_batch()
    features = head.image_features(images, (), metas)
    assert [tuple(f.shape[:2]) for f in features] == [(2, 256)] * 4
    boxes = head(queries, query_mask, features, metas)
    assert boxes.shape == (2, 2, 4, 4) and bool(((boxes > 0) & (boxes < 1)).all())
    # padded slots are hidden from every attention: they change no valid output
    changed = queries.clone()
    changed[~query_mask] = 10.0
    torch.testing.assert_close(head(changed, query_mask, features, metas)[:, query_mask],
                               boxes[:, query_mask], atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        results = head.predict_by_feat(queries, query_mask, features, metas)
    assert [len(r) for r in results] == [3, 2]
    assert all(bool(((r.bboxes >= 0) & (r.bboxes <= CANVAS)).all()) for r in results)


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


def test_loss_decreases_on_a_fixed_batch():
    head = build_head()
    queries, query_mask, group_ids, targets, metas, images = make_batch()
    features = head.image_features(images, (), metas)
    optim = torch.optim.Adam([p for p in head.parameters() if p.requires_grad], lr=1e-3)

    def total():
        losses = head.loss_by_feat(queries, query_mask, group_ids, features, targets, metas)
        return losses['loss_bbox'] + losses['loss_iou']

    first = total().item()
    for _ in range(6):
        optim.zero_grad()
        total().backward()
        optim.step()
    assert total().item() < 0.8 * first


@pytest.mark.parametrize('with_queries', [True, False])
def test_every_trainable_parameter_gets_a_gradient_and_the_backbone_none(with_queries):
    head = build_head().train()
    queries, query_mask, group_ids, targets, metas, images = make_batch()
    queries.requires_grad_(True)
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
    assert not any(p.requires_grad for p in head.gdino.neck.parameters())
    assert queries.grad is not None and not head.gdino.backbone.training


def test_predict_returns_original_pixels():
    head = build_head().eval()
    queries, query_mask, group_ids, _, metas, images = make_batch()
    metas = [dict(m, ori_shape=(2 * m['img_shape'][0], 2 * m['img_shape'][1]),
                  scale_factor=(0.5, 0.5)) for m in metas]
    samples = [DetDataSample(metainfo=m) for m in metas]
    results = head.predict(_routed(queries, query_mask, group_ids), (), samples, True, images)
    bboxes = results[1].pred_instances.bboxes
    assert bboxes.shape == (2, 4) and float(bboxes[:, 2].max()) <= 112
    with pytest.raises(ValueError, match='images'):
        head.predict(_routed(queries, query_mask, group_ids), (), samples, True, None)


class _NoBert(nn.Module):
    """Stands for GroundingDINO's BERT (hub weights, not loaded by the head): its width only."""

    def __init__(self, **kwargs):
        super().__init__()
        self.language_backbone = SimpleNamespace(body=SimpleNamespace(language_dim=768))


@pytest.fixture(scope='module')
def swin_t_checkpoint(tmp_path_factory):
    """MMDetection's full-size GroundingDINO Swin-T (its released config, BERT stubbed), state
    dict written to a file: the keys and shapes of ``groundingdino_swint_ogc_mmdet``. Built on
    the meta device and then given memory (per-tensor constants), which keeps the test fast."""
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    MMDET_MODELS.register_module('_NoBertForTest', module=_NoBert, force=True)
    cfg = Config.fromfile(osp.join(osp.dirname(__import__('mmdet').__file__), '.mim', 'configs',
                                   'grounding_dino',
                                   'grounding_dino_swin-t_pretrain_obj365_goldg_cap4m.py'))
    cfg.model.language_model = dict(type='_NoBertForTest')
    cfg.model.pop('data_preprocessor')
    with torch.device('meta'):
        gdino = MMDET_MODELS.build(cfg.model)
    state = gdino.to_empty(device='cpu').state_dict()
    for i, value in enumerate(state.values()):
        value.fill_(i % 7)
    path = str(tmp_path_factory.mktemp('gdino') / 'groundingdino_swint.pth')
    torch.save(dict(state_dict=state), path)
    return path, state


def test_the_released_swin_t_layout_loads_every_key(swin_t_checkpoint):
    path, state = swin_t_checkpoint
    with torch.device('meta'):  # full size: the head's defaults are Grounding DINO Swin-T
        head = GroundingDINORefBoxHead(in_channels=LLM_DIMS, pyramid_channels=(8, ),
                                       gdino_checkpoint=path)
    head.to_empty(device='cpu')
    loaded = load_gdino_state(head, path)
    own = head.gdino.state_dict()
    assert sorted(own) == loaded
    assert {k for k in head.state_dict() if not k.startswith('gdino.')} == {
        'ref_text_map.weight', 'ref_text_map.bias'}
    renamed = {k.replace('bbox_head.reg_branches.', 'reg_branches.'): v for k, v in state.items()}
    assert all(torch.equal(own[key], renamed[key]) for key in loaded)


def test_a_checkpoint_of_another_architecture_is_refused_by_name(tmp_path):
    path = str(tmp_path / 'other.pth')
    cfg = tiny_head_cfg()
    cfg['decoder'] = dict(cfg['decoder'], num_layers=1)
    torch.save(MODELS.build(cfg).gdino.state_dict(), path)
    with pytest.raises(ValueError, match=r"missing keys \['decoder.layers.1"):
        build_head(gdino_checkpoint=path)


def test_tiny_config_swaps_the_box_head_and_trains_inside_refvlm(tiny_data,
                                                                  tiny_config_shrinker):
    """The project's tiny config, shrunk like the suite's: REFVLM hands the head its images;
    losses are finite; predict runs."""
    cfg = tiny_config_shrinker(read_config(TINY_CONFIG, dict(data_root=tiny_data)))
    init_default_scope('mmrefvlm')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    assert isinstance(model.heads['box'], GroundingDINORefBoxHead)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    picked = [i for i in range(len(dataset)) if dataset.get_data_info(i)['task'] == 'rec'][:2]
    data = model.data_preprocessor(pseudo_collate([dataset[i] for i in picked]), True)
    losses = model.loss(**data)
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses['box.loss_iou'].item() > 0
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert model.heads['box'].ref_text_map.weight.grad is not None
    model.eval()
    test_set = DATASETS.build(copy.deepcopy(cfg.test_dataloader.dataset))
    batch = model.data_preprocessor(pseudo_collate([test_set[0]]), False)
    with torch.no_grad():
        assert 'pred_instances' in model.predict(**batch)[0]
