"""Helpers for tests and benchmarks that shrink the shipped configs (as MMDetection's
``mmdet.testing``); they read the configs and tools of the source checkout the package sits in."""
import importlib.util
import json
import os.path as osp
from typing import Optional

from mmengine.config import Config

from mmrefvlm.utils.config_refs import read_config

REPO_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(REPO_DIR, 'configs')
TINY_MAIN_JOB = osp.join(CONFIG_DIR, 'refvlm', 'refvlm_tinyllama_tinyconv_stage2_synthetic.py')
TINY_VIT = dict(layers=2, width=64, patch_size=16, image_size=64, head_width=32)
TINY_CONVNEXT = dict(timm_model_name='convnext_atto', timm_pool='', timm_proj='linear')
TINY_LLAMA = dict(model_type='llama', hidden_size=64, intermediate_size=128,
                  num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2)


def shrink_decoder(decoder: dict, embed_dims: int = 32) -> dict:
    """A head's ``decoder`` config at test size: a DETR-style one (``layer_cfg``) one layer,
    ``embed_dims`` wide, two heads; a flat one (its own arguments) ``embed_dims`` wide."""
    if 'layer_cfg' not in decoder:
        return dict(decoder, embed_dims=embed_dims)
    attention = dict(decoder['layer_cfg']['self_attn_cfg'], embed_dims=embed_dims, num_heads=2)
    ffn = dict(decoder['layer_cfg']['ffn_cfg'], embed_dims=embed_dims,
               feedforward_channels=2 * embed_dims)
    return dict(decoder, num_layers=1,
                layer_cfg=dict(self_attn_cfg=attention, cross_attn_cfg=attention, ffn_cfg=ffn))


def build_generated_tokenizer(data_root: str, vocab_size: int = 512) -> None:
    """``data_root/tokenizer`` for a generated set (``tools/misc/build_tokenizer.py``; kept when
    it is up to date)."""
    load_script('tools/misc/build_tokenizer.py').build(data_root, vocab_size=vocab_size)


def load_script(path: str):
    """A script of the checkout (``path`` relative to it, e.g. ``demo/image_demo.py``) as a
    module, without running its ``__main__`` block."""
    spec = importlib.util.spec_from_file_location(osp.splitext(osp.basename(path))[0],
                                                  osp.join(REPO_DIR, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_config(data_root: str) -> Config:
    """The main job's config, full size, reading the generated set in ``data_root`` and its
    tokenizer (:func:`build_generated_tokenizer`, ``data_root/tokenizer``) in training and
    test."""
    return read_config(TINY_MAIN_JOB, dict(data_root=data_root))


def shrunk_stage_config(stage: str, data_root: str) -> Config:
    """``configs/refvlm_{stage}.py`` with the overrides a user would pass as --cfg-options: tiny
    towers, LM and heads (the LM keeps the config's dtype), training data from
    ``data_root/train.jsonl`` and its generated tokenizer."""
    tokenizer = dict(type='generated', path=osp.join(data_root, 'tokenizer'))
    cfg = read_config(osp.join(CONFIG_DIR, f'refvlm_{stage}.py'),
                      dict(data_root=data_root, train_ann_file='train.jsonl'))
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
    if 'keypoint' in cfg.model.heads:  # the generated set's keypoints, not COCO's 17
        with open(osp.join(data_root, 'meta.json')) as f:
            sigmas = json.load(f)['keypoint_sigmas']
        options.update({
            'model.heads.keypoint.box_head_checkpoint': None,
            'model.heads.keypoint.num_keypoints': len(sigmas),
            'model.heads.keypoint.keypoint_sigmas': sigmas,
        })
    cfg.merge_from_dict(options)
    for head in cfg.model.heads.values():
        head['num_groups'] = 8
    for transform in cfg.train_dataloader.dataset.pipeline:
        if transform['type'] == 'ResizePadToCanvas':
            transform['size'] = 64
        if transform['type'] == 'RenderConversation':
            transform.update(image_token_len=16, region_token_len=4)
        if transform['type'] == 'TokenizeConversation':
            transform['tokenizer'] = tokenizer
    return cfg


def short_training_run(cfg: Config, work_dir: str, max_iters: int,
                       checkpoint_interval: Optional[int] = None) -> Config:
    """``cfg`` set up, in place, for a few training steps in ``work_dir``: batches of 2 read in
    the main process, a constant lr, no validation or test, a checkpoint every
    ``checkpoint_interval`` steps (default: at the end), no drawing."""
    cfg.work_dir = work_dir
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                         val_interval=max_iters + 1)
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    cfg.train_dataloader.update(batch_size=2, num_workers=0, persistent_workers=False)
    if cfg.get('strategy') is not None:
        cfg.strategy.train_micro_batch_size_per_gpu = 2
    cfg.default_hooks.checkpoint.interval = checkpoint_interval or max_iters
    cfg.default_hooks.visualization = dict(type='DetVisualizationHook', draw=False)
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    return cfg


def script_generation(model, answer: str, seed: int = 0) -> None:
    """Make a REF-VLM ``model`` answer ``answer`` to every prompt, its last-layer states random
    but fixed by ``seed``, so that the router and the heads run on a known answer (a random LM
    rarely writes a triplet)."""
    import torch

    from mmrefvlm.models.language.generation import GenerationOutput
    neck = model.neck
    ids = neck.tokenizer(answer, add_special_tokens=False)['input_ids']
    generator = torch.Generator().manual_seed(seed)
    hidden = torch.randn(1, len(ids) + 1, neck.hidden_size, generator=generator)

    def generate(input_ids, *args, **kwargs):
        batch = input_ids.shape[0]
        tokens = torch.tensor([ids + [neck.tokenizer.eos_token_id]]).repeat(batch, 1)
        return GenerationOutput(tokens, hidden.repeat(batch, 1, 1), torch.full((batch, ), len(ids)))

    neck.generate = generate


def routed_queries(queries, query_mask, group_ids, phrases=(('a', 'b'), ('c', )),
                   no_queries: bool = False):
    """A unit's ``RoutedQueries`` as the router gives them to a head: ``queries [B, Q, D]``,
    ``query_mask [B, Q]``, ``group_ids [B, Q]``; each real query's ``<REF>`` is the next of its
    sample (``ref_index``), ``phrases`` per sample. ``no_queries``: the batch has no ``<REF>``
    of the unit (``Q = 0``, cut from the given tensors so gradients still reach them: the
    paper's fake query, App. C.2)."""
    import torch

    from mmrefvlm.models.routers import RoutedQueries
    if no_queries:
        queries, query_mask, group_ids = queries[:, :0], query_mask[:, :0], group_ids[:, :0]
    ref_index = torch.where(query_mask, query_mask.long().cumsum(1) - 1, -1)
    return RoutedQueries(queries, query_mask, group_ids, ref_index,
                         [list(sample) for sample in phrases])


def one_training_step(cfg: Config, task: str, num_samples: int = 2):
    """The model of ``cfg`` (seed 0) after the loss of the first ``num_samples`` training records
    of ``task`` and its backward: ``(model, data, losses)``, ``data`` as the preprocessor gave
    it. Raises ``AssertionError`` when a loss is not finite."""
    import torch
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope

    from mmrefvlm.registry import DATASETS, MODELS
    init_default_scope('mmrefvlm')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    picked = [i for i in range(len(dataset))
              if dataset.get_data_info(i)['task'] == task][:num_samples]
    assert len(picked) == num_samples, f'{len(picked)} training records of {task}'
    data = model.data_preprocessor(pseudo_collate([dataset[i] for i in picked]), True)
    losses = model.loss(**data)
    assert all(torch.isfinite(v) for v in losses.values()), losses
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    return model, data, losses


def predict_first_test_record(model, cfg: Config, task: str):
    """``model.predict`` (eval mode, no gradients) on the first test record of ``task``: its
    ``DetDataSample``."""
    import copy

    import torch
    from mmengine.dataset import pseudo_collate

    from mmrefvlm.registry import DATASETS
    test_set = DATASETS.build(copy.deepcopy(cfg.test_dataloader.dataset))
    index = next(i for i in range(len(test_set)) if test_set.get_data_info(i)['task'] == task)
    model.eval()
    batch = model.data_preprocessor(pseudo_collate([test_set[index]]), False)
    with torch.no_grad():
        return model.predict(**batch)[0]
