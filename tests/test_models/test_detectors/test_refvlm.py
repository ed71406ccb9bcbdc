"""REFVLM end to end at test size: losses, gradients on every parameter, <REF> convention,
prediction in original pixels."""
import copy

import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from torch import nn

from mmrefvlm.models.heads import RefUnitHead
from mmrefvlm.models.heads.canvas import points_to_original
from mmrefvlm.models.language.generation import GenerationOutput
from mmrefvlm.registry import DATASETS, MODELS


def _build(cfg, split='train'):
    init_default_scope('mmrefvlm')
    torch.manual_seed(0)
    loader = cfg.train_dataloader if split == 'train' else cfg.test_dataloader
    return MODELS.build(cfg.model), DATASETS.build(loader.dataset)


def _pick(dataset, tasks, count):
    """Indices of the first ``count`` records whose task is in ``tasks``."""
    return [i for i in range(len(dataset)) if dataset.get_data_info(i)['task'] in tasks][:count]


def _batch(dataset, tasks, size=4):
    return pseudo_collate([dataset[i] for i in _pick(dataset, tasks, size)])


def _total(losses):
    return sum(value for key, value in losses.items() if 'loss' in key)


def test_every_parameter_gets_a_gradient_whatever_the_task_mix(tiny_cfg):
    model, dataset = _build(tiny_cfg)
    for tasks in (('rec', 'res', 'keypoint', 'depth'), ('caption', 'vqa')):
        model.zero_grad()
        data = model.data_preprocessor(_batch(dataset, tasks), True)
        losses = model.loss(**data)
        assert {'loss_lm', 'box.loss_bbox', 'mask.loss_dice'} <= set(losses)
        assert all(torch.isfinite(v) for v in losses.values())
        _total(losses).backward()
        missing = [name for name, p in model.named_parameters()
                   if p.requires_grad and p.grad is None]
        assert missing == [], f'{tasks}: no gradient for {missing}'
        if tasks == ('caption', 'vqa'):
            assert losses['box.loss_bbox'].item() == 0.0


def test_a_head_reads_only_the_samples_that_hold_its_queries(tiny_cfg):
    model, dataset = _build(tiny_cfg)
    rec, caption = _pick(dataset, ('rec', ), 2), _pick(dataset, ('caption', ), 2)
    seen = {}
    for unit, head in model.heads.items():
        def record(*args, _forward=head.forward_with_aux, _unit=unit):
            seen[_unit] = [level.shape[0] for level in args[2]]
            return _forward(*args)
        head.forward_with_aux = record
    mixed = model.data_preprocessor(
        pseudo_collate([dataset[i] for i in (caption[0], rec[0], caption[1], rec[1])]), True)
    with torch.no_grad():
        losses = model.loss(**mixed)
    # the box head gets the two REC samples; a head without queries one sample (fake query)
    assert set(seen['box']) == {2} and set(seen['depth']) == {1}
    alone = model.data_preprocessor(pseudo_collate([dataset[i] for i in rec]), True)
    with torch.no_grad():
        reference = model.loss(**alone)
    for name in ('box.loss_bbox', 'box.loss_iou', 'box.loss_locate'):
        torch.testing.assert_close(losses[name], reference[name], rtol=1e-4, atol=1e-5)


def test_extra_units_train_a_head_on_other_units_queries(tiny_cfg):
    """``train_cfg.extra_units``: the box head also learns from RES queries (their targets'
    boxes), the mask head from REC queries whose objects have a mask, never from one whose
    mask is empty."""
    cfg = copy.deepcopy(tiny_cfg)
    cfg.model.train_cfg = dict(extra_units=dict(box=('mask', ), mask=('box', )))
    model, dataset = _build(cfg)
    seen = {}
    for unit in ('box', 'mask'):
        def record(*args, _loss=model.heads[unit].loss_by_feat, _unit=unit):
            seen[_unit] = (int(args[1].sum()), torch.cat([t.bboxes for t in args[4]]))
            return _loss(*args)
        model.heads[unit].loss_by_feat = record
    res = model.data_preprocessor(_batch(dataset, ('res', ), 2), True)
    with torch.no_grad():
        losses = model.loss(**res)
    targets = torch.cat([s.gt_instances.bboxes for s in res['data_samples']])
    assert seen['box'][0] == len(targets) and float(losses['box.loss_bbox']) > 0
    torch.testing.assert_close(seen['box'][1], targets)
    rec = model.data_preprocessor(_batch(dataset, ('rec', ), 2), True)
    with torch.no_grad():
        model.loss(**rec)
    assert seen['mask'][0] == sum(len(s.gt_instances) for s in rec['data_samples'])
    for sample in rec['data_samples']:  # objects without a mask carry an all-zero one
        sample.gt_instances.masks.masks[:] = 0
    with torch.no_grad():
        losses = model.loss(**rec)
    assert float(losses['mask.loss_dice']) == 0.0


def test_loss_decreases_on_a_fixed_batch(tiny_cfg):
    model, dataset = _build(tiny_cfg)
    data = model.data_preprocessor(_batch(dataset, ('rec', 'res')), True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    first = None
    for _ in range(12):
        losses = model.loss(**copy.deepcopy(data))
        total = _total(losses)
        first = total.item() if first is None else first
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    assert total.item() < 0.8 * first


def test_ref_state_is_the_same_in_training_and_generation(tiny_cfg):
    model, dataset = _build(tiny_cfg, 'test')
    model.eval()
    data = model.data_preprocessor(_batch(dataset, ('rec', ), size=2), False)
    inputs = data['inputs']
    global_tokens, _ = model.extract_feat(inputs['images'])
    grid = model.backbone.global_grid
    out = model.neck.generate(inputs['input_ids'], inputs['attention_mask'], global_tokens, grid,
                              inputs['prompt_masks'], max_new_tokens=6)
    # teacher-forced pass over prompt + generated tokens: hidden[b, i] belongs to input token i
    ids = torch.cat([inputs['input_ids'], out.tokens], 1)
    mask = torch.cat([inputs['attention_mask'], torch.ones_like(out.tokens)], 1)
    with torch.no_grad():
        embeds = model.neck.embed(ids, global_tokens, grid, inputs['prompt_masks'])
        position_ids = (mask.cumsum(-1) - 1).clamp_min(0)
        hidden = model.neck.lm(inputs_embeds=embeds, attention_mask=mask,
                               position_ids=position_ids,
                               output_hidden_states=True).hidden_states[-1]
    prompt_len = inputs['input_ids'].shape[1]
    for b in range(2):
        steps = int(out.lengths[b])
        torch.testing.assert_close(out.hidden[b, :steps], hidden[b, prompt_len:prompt_len + steps],
                                   atol=1e-4, rtol=1e-4)


def test_predict_routes_generated_units_and_returns_original_pixels(tiny_cfg):
    model, dataset = _build(tiny_cfg, 'test')
    model.eval()
    batch = _batch(dataset, ('rec', 'res'), size=2)
    data = model.data_preprocessor(batch, False)
    tokenizer = model.neck.tokenizer
    answers = [s.metainfo['gt_answer'] for s in data['data_samples']]
    ids = [tokenizer(a, add_special_tokens=False)['input_ids'] + [tokenizer.eos_token_id]
           for a in answers]
    width = max(map(len, ids))
    tokens = torch.full((2, width), tokenizer.pad_token_id)
    for b, row in enumerate(ids):
        tokens[b, :len(row)] = torch.tensor(row)
    lengths = torch.tensor([len(row) - 1 for row in ids])

    def scripted_generate(*args, **kwargs):
        # the LM is replaced by the reference answer; everything after it is real
        return GenerationOutput(tokens, torch.randn(2, width, model.neck.hidden_size), lengths)

    model.neck.generate = scripted_generate
    with torch.no_grad():
        results = model.predict(data['inputs'], data['data_samples'])
    for sample, answer in zip(results, answers):
        assert sample.pred_text.startswith(answer[:10])
        pred = sample.pred_instances
        num_refs = answer.count('<REF>')
        assert len(pred) == num_refs
        height, width_px = sample.metainfo['ori_shape']
        assert pred.bboxes.shape == (num_refs, 4)
        assert float(pred.bboxes[:, 2].max()) <= width_px
        if sample.metainfo['task'] == 'res':
            assert pred.masks.shape == (num_refs, height, width_px)
            assert pred.masks.dtype == torch.bool
        assert sample.pred_phrases and sample.pred_phrases[0] in answer


@MODELS.register_module(force=True)
class RefPointHead(RefUnitHead):
    """A fifth unit, defined here and nowhere else: the centre of the referred object's box,
    regressed from its query (``<Unit>point</Unit>``)."""

    loss_names = ('loss_point', )
    target_field = 'bboxes'

    def __init__(self, in_channels: int, pyramid_channels, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.point = nn.Linear(in_channels + pyramid_channels[-1], 2)

    def forward(self, queries, query_mask, pyramid, batch_img_metas):
        """``[B, Q, 2]`` points normalised by the canvas."""
        image = pyramid[-1].mean((2, 3))[:, None].expand(-1, queries.shape[1], -1)
        return self.point(torch.cat([queries, image.to(queries.dtype)], -1)).sigmoid()

    def loss_keys(self):
        return list(self.loss_names)

    def loss_by_feat(self, queries, query_mask, group_ids, pyramid, targets, batch_img_metas):
        points = self(queries, query_mask, pyramid, batch_img_metas)
        pred = torch.cat([points[b][query_mask[b]] * meta['pad_shape'][0]
                          for b, meta in enumerate(batch_img_metas)])
        gt = torch.cat([(t.bboxes[:, :2] + t.bboxes[:, 2:]) / 2 for t in targets])
        return dict(loss_point=(pred - gt).abs().mean())

    def predict_by_feat(self, queries, query_mask, pyramid, batch_img_metas):
        points = self(queries, query_mask, pyramid, batch_img_metas)
        return [InstanceData(points=points[b][query_mask[b]] * meta['pad_shape'][0],
                             scores=points.new_ones(int(query_mask[b].sum())))
                for b, meta in enumerate(batch_img_metas)]

    def rescale(self, pred, img_meta):
        pred.points = points_to_original(pred.points, img_meta)
        return pred


def _point_samples(dataset, count):
    """REC samples whose answers name the ``point`` unit instead of ``box``."""
    samples = []
    for i in _pick(dataset, ('rec', ), count):
        info = copy.deepcopy(dataset.get_data_info(i))
        for turn in info['conversations']:
            turn['value'] = turn['value'].replace('<Unit>box</Unit>', '<Unit>point</Unit>')
        samples.append(dataset.pipeline(info))
    return pseudo_collate(samples)


def test_a_fifth_unit_trains_and_predicts_without_touching_the_detector(tiny_cfg):
    tiny_cfg.model.heads.point = dict(type='RefPointHead')
    model, dataset = _build(tiny_cfg)
    data = model.data_preprocessor(_point_samples(dataset, 2), True)
    losses = model.loss(**data)
    assert float(losses['point.loss_point']) > 0 and float(losses['box.loss_bbox']) == 0
    _total(losses).backward()
    assert all(p.grad is not None and bool(p.grad.any()) for p in model.heads.point.parameters())

    model, dataset = _build(tiny_cfg, 'test')
    model.eval()
    data = model.data_preprocessor(_point_samples(dataset, 2), False)
    tokenizer = model.neck.tokenizer
    answers = [s.metainfo['gt_answer'] for s in data['data_samples']]
    assert all('<Unit>point</Unit>' in answer for answer in answers)
    ids = [tokenizer(a, add_special_tokens=False)['input_ids'] for a in answers]
    width = max(map(len, ids))
    tokens = torch.full((2, width), tokenizer.pad_token_id)
    for b, row in enumerate(ids):
        tokens[b, :len(row)] = torch.tensor(row)
    model.neck.generate = lambda *args, **kwargs: GenerationOutput(
        tokens, torch.randn(2, width, model.neck.hidden_size), torch.tensor(list(map(len, ids))))
    with torch.no_grad():
        results = model.predict(data['inputs'], data['data_samples'])
    for sample, answer in zip(results, answers):
        pred = sample.pred_instances
        assert pred.points.shape == (answer.count('<REF>'), 2)
        height, width_px = sample.metainfo['ori_shape']
        assert bool((pred.points >= 0).all()) and float(pred.points[:, 0].max()) <= width_px


def test_unit_loss_weights_scale_each_heads_losses_and_frozen_modules_freeze(tiny_cfg):
    """Paper Eq. 9's per-decoder weights, and stage 3's frozen decoders, as config keys."""
    model, dataset = _build(tiny_cfg)
    data = model.data_preprocessor(_batch(dataset, ('rec', 'res')), True)
    plain = model.loss(**copy.deepcopy(data))
    weighted_cfg = copy.deepcopy(tiny_cfg.model)
    weighted_cfg.update(unit_loss_weights=dict(box=2.0, mask=0.5),
                        frozen_modules=('heads.mask', ))
    torch.manual_seed(0)
    weighted = MODELS.build(weighted_cfg)
    weighted.load_state_dict(model.state_dict())
    losses = weighted.loss(**copy.deepcopy(data))
    for key, value in plain.items():
        factor = 2.0 if key.startswith('box.loss') else 0.5 if key.startswith('mask.loss') else 1
        torch.testing.assert_close(losses[key], value * factor, msg=key)
    assert not any(p.requires_grad for p in weighted.heads.mask.parameters())
    assert all(p.requires_grad for p in weighted.heads.box.parameters())
    bad = copy.deepcopy(tiny_cfg.model)
    bad.update(unit_loss_weights=dict(boxes=1.0))
    with pytest.raises(ValueError, match=r"units \['boxes'\] without a head"):
        MODELS.build(bad)
