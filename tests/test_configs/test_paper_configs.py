"""The paper-scale stage configs build and run once their dimensions are shrunk through
``--cfg-options``-style overrides (so they cannot rot while nobody has the 7B weights here)."""
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

from mmrefvlm.models.heads import RefBoxHead, RefMaskHead
from mmrefvlm.registry import DATASETS, MODELS
from mmrefvlm.testing import shrink_decoder

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_VIT = dict(layers=2, width=64, patch_size=16, image_size=64, head_width=32)
TINY_CONVNEXT = dict(timm_model_name='convnext_atto', timm_pool='', timm_proj='linear')
TINY_LLAMA = dict(model_type='llama', hidden_size=64, intermediate_size=128,
                  num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2)


def split_by_family(data_root: str, out_dir: str) -> None:
    """``train.jsonl`` of ``data_root`` written as one file per task family (what the stage-1
    mixture reads), with its ``meta.json``."""
    import json
    import shutil

    from mmrefvlm.datasets import TASKS
    os.makedirs(out_dir, exist_ok=True)
    shutil.copy(osp.join(data_root, 'meta.json'), osp.join(out_dir, 'meta.json'))
    by_family = {}
    with open(osp.join(data_root, 'train.jsonl')) as f:
        for line in f:
            by_family.setdefault(TASKS[json.loads(line)['task']].family, []).append(line)
    for family, lines in by_family.items():
        with open(osp.join(out_dir, f'{family}.jsonl'), 'w') as f:
            f.writelines(lines)


def _shrink_pipeline(pipeline: list, tokenizer: dict) -> None:
    for transform in pipeline:
        if transform['type'] == 'ResizePadToCanvas':
            transform['size'] = 64
        if transform['type'] == 'RenderConversation':
            transform.update(image_token_len=16, region_token_len=4)
        if transform['type'] == 'TokenizeConversation':
            transform['tokenizer'] = tokenizer


def shrunk(stage: str, data_root: str, shrink_decoder=shrink_decoder) -> Config:
    """``configs/refvlm_{stage}.py`` with the overrides a user would pass as --cfg-options: tiny
    towers, LM and heads (the LM keeps the config's dtype), data from ``data_root`` (stage 1's
    per-family files are written beside it)."""
    tokenizer = dict(type='generated', path=osp.join(data_root, 'tokenizer'))
    cfg = Config.fromfile(osp.join(REPO, 'configs', f'refvlm_{stage}.py'))
    backbone = cfg.model.backbone
    vit = 'model.backbone.global_tower' if 'global_tower' in backbone else 'model.backbone'
    options = {
        'model.data_preprocessor.tokenizer': tokenizer,
        f'{vit}.model_name': None,
        f'{vit}.pretrained': None,
        f'{vit}.vision_cfg': TINY_VIT,
        'model.neck.lm': dict(type='config', config=TINY_LLAMA,
                              torch_dtype=cfg.model.neck.lm.get('torch_dtype')),
        'model.neck.tokenizer': tokenizer,
        'model.neck.aggregation.grid': (2, 2),
    }
    if 'dense_tower' in backbone:
        options.update({
            'model.backbone.dense_tower.model_name': None,
            'model.backbone.dense_tower.pretrained': None,
            'model.backbone.dense_tower.image_size': 64,
            'model.backbone.dense_tower.vision_cfg': TINY_CONVNEXT,
        })
    for unit, head in cfg.model.heads.items():
        options[f'model.heads.{unit}.decoder'] = shrink_decoder(head.decoder)
    if 'mask' in cfg.model.heads:
        options['model.heads.mask.pixel_decoder'] = dict(
            type='PixelDecoder', norm_cfg=dict(type='GN', num_groups=8), act_cfg=dict(type='ReLU'))
    if 'keypoint' in cfg.model.heads:
        options['model.heads.keypoint.box_head_checkpoint'] = None
    cfg.merge_from_dict(options)
    for head in cfg.model.heads.values():
        head['num_groups'] = 8
    dataset = cfg.train_dataloader.dataset
    if dataset.type == 'ConcatDataset':
        split_by_family(data_root, osp.join(data_root, 'stage1'))
        for sub in dataset.datasets:
            sub.update(data_root=data_root, data_prefix=dict(img_path=data_root))
            _shrink_pipeline(sub.pipeline, tokenizer)
    else:
        dataset.update(data_root=data_root, ann_file='train.jsonl')
        _shrink_pipeline(dataset.pipeline, tokenizer)
    return cfg


@pytest.mark.parametrize('stage', ['stage1', 'stage2', 'stage3'])
def test_stage_config_builds_and_trains_one_step(stage, tiny_data, decoder_shrinker):
    cfg = shrunk(stage, tiny_data, decoder_shrinker)
    init_default_scope('mmrefvlm')
    model = MODELS.build(cfg.model)
    # both CLIP towers are frozen in every stage (paper App. D)
    assert not any(p.requires_grad for p in model.backbone.parameters())
    lm_trainable = any(p.requires_grad for p in model.neck.lm.parameters())
    assert lm_trainable == (stage != 'stage1')
    assert all(p.requires_grad for p in model.neck.projector.parameters())
    # paper Table 14: stage 1 builds no unit head and no dense tower; stage 3 trains the
    # keypoint decoder and keeps the box and mask decoders frozen
    expected_heads = {'stage1': set(), 'stage2': {'box', 'mask'},
                      'stage3': {'box', 'mask', 'keypoint'}}[stage]
    assert set(model.heads) == expected_heads
    assert hasattr(model.backbone, 'dense_tower') == (stage != 'stage1')
    trained_heads = {unit for unit, head in model.heads.items()
                     if all(p.requires_grad for p in head.parameters())}
    frozen_heads = {unit for unit, head in model.heads.items()
                    if not any(p.requires_grad for p in head.parameters())}
    assert trained_heads == {'stage1': set(), 'stage2': {'box', 'mask'},
                             'stage3': {'keypoint'}}[stage]
    assert frozen_heads == expected_heads - trained_heads
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    picked = [i for i in range(len(dataset))
              if dataset.get_data_info(i)['task'] in ('rec', 'res', 'caption')][:3]
    data = model.data_preprocessor(pseudo_collate([dataset[i] for i in picked]), True)
    losses = model.loss(**data)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_stage2_builds_the_papers_heads(tiny_data, decoder_shrinker):
    """The paper's DETR box head and MaskFormer mask head on the <REF> states: no locator, no
    box prior, no positions in the values, no scene boxes, no phrase queries (the tiny
    config's additions are opt-in by name)."""
    cfg = shrunk('stage2', tiny_data, decoder_shrinker)
    init_default_scope('mmrefvlm')
    model = MODELS.build(cfg.model)
    box, mask = model.heads['box'], model.heads['mask']
    assert type(box) is RefBoxHead and type(mask) is RefMaskHead
    assert box.locator is None and mask.locator is None and mask.mask_prior is None
    assert not box.decoder.positions_in_values and not mask.decoder.positions_in_values
    assert model.router.phrase_queries is None and not model.extra_units
    assert not any('locate' in name for name in box.loss_keys() + mask.loss_keys())
    full = Config.fromfile(osp.join(REPO, 'configs', 'refvlm_stage2.py'))
    assert full.model.heads.box.decoder.num_layers == 6
    packs = [t for t in full.train_dataloader.dataset.pipeline if t.type == 'PackREFVLMInputs']
    assert packs and not packs[0].get('scene_boxes', False)
