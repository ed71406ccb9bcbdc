"""The record → model-input pipeline: load, canvas, conversation, tokens, pack."""
import copy

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmdet.structures.mask import BitmapMasks
from mmengine.registry import init_default_scope
from PIL import Image

from mmrefvlm.datasets.transforms import (END_OF_TURN, IGNORE_INDEX, ConversationTooLongError,
                                          LoadVTInstructAnnotations, PackREFVLMInputs,
                                          RenderConversation, ResizePadToCanvas,
                                          TokenizeConversation, refvlm_pipeline,
                                          render_conversation)
from mmrefvlm.datasets.transforms.tokenization import FULL_WARNINGS
from mmrefvlm.tokenization import build_tokenizer, train_tokenizer
from mmrefvlm.trp import compose_cot

W, H, S = 64, 48, 32  # original 64×48 → canvas 32: scale 0.5, resized 32×24
N_IMG, N_REG = 4, 2
ANSWER_1 = '<Phrase>red square</Phrase>(<Unit>box</Unit>[0]<REF>)'
ANSWER_2 = ('A <Phrase>circle</Phrase>(<Unit>box</Unit>[0]<REF>) beside '
            '<Phrase>squares</Phrase>(<Unit>box</Unit>[0]<REF>[1]<REF>).')


def make_info(img_path=None, depth_path=None):
    """A data-list dict as ``VTInstructDataset`` yields it: 3 instances, 2 prompts, 2 rounds."""
    return dict(
        img_path=img_path, img_id='rec_0', record_id='rec_0', sample_idx=0, line=1,
        task='ig_box', width=W, height=H, depth_path=depth_path, classes=['circle', 'square'],
        instances=[
            dict(bbox=[4, 6, 10, 8], category='square', depth=2.5,
                 segmentation=[[4, 6, 14, 6, 14, 14, 4, 14]],
                 keypoints=[5, 7, 2, 13, 13, 1]),
            dict(bbox=[30, 20, 12, 12], category='circle', depth=1.0),
            dict(bbox=[50, 30, 10, 16], category='triangle',
                 keypoints=[52, 32, 2, 0, 0, 0]),
        ],
        prompts=[dict(type='point', data=[9, 10]), dict(type='box', data=[30, 20, 12, 12])],
        conversations=[
            dict(**{'from': 'human', 'value': '<image>\nWhat is at <region>?'}),
            dict(**{'from': 'gpt', 'value': ANSWER_1, 'refs': [0]}),
            dict(**{'from': 'human', 'value': 'And around <region>?'}),
            dict(**{'from': 'gpt', 'value': ANSWER_2, 'refs': [1, 0, 2]}),
        ])


@pytest.fixture(scope='module')
def tokenizer_cfg(tmp_path_factory):
    info = make_info()
    texts = [render_conversation(info['task'], info['conversations']).text,
             'What is in the image? A small picture of squares and circles.']
    out = tmp_path_factory.mktemp('tok') / 'tokenizer'
    train_tokenizer(texts, str(out), vocab_size=320)
    return dict(type='generated', path=str(out))


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp('img')
    rng = np.random.default_rng(0)
    img_path = root / 'img.png'
    Image.fromarray(rng.integers(1, 255, (H, W, 3), dtype=np.uint8)).save(img_path)
    depth = np.zeros((H, W), np.uint16)
    depth[:, W // 2:] = 1500
    depth_path = root / 'depth.png'
    Image.fromarray(depth).save(depth_path)
    return str(img_path), str(depth_path)


def loaded(files):
    results = make_info(*files)
    results['img'] = np.asarray(Image.open(files[0]))[..., ::-1].copy()
    results['img_shape'] = results['ori_shape'] = (H, W)
    return LoadVTInstructAnnotations(point_radius=3, scribble_width=3)(results)


def test_load_annotations_in_original_pixels(files):
    results = loaded(files)
    np.testing.assert_allclose(results['gt_bboxes'].tensor.numpy(),
                               [[4, 6, 14, 14], [30, 20, 42, 32], [50, 30, 60, 46]])
    masks = results['gt_masks']
    assert isinstance(masks, BitmapMasks) and masks.masks.shape == (3, H, W)
    assert masks.masks[0, 7:13, 5:13].all() and masks.masks[0].sum() <= 11 * 9
    assert masks.masks[1].sum() == 0 and masks.masks[2].sum() == 0
    assert results['gt_keypoints'].shape == (3, 2, 3)
    np.testing.assert_array_equal(results['gt_keypoints'][2], [[52, 32, 2], [0, 0, 0]])
    np.testing.assert_array_equal(results['gt_keypoints'][1], 0)
    assert results['gt_categories'] == ['square', 'circle', 'triangle']
    np.testing.assert_allclose(results['gt_depths'], [2.5, 1.0, 0.0])
    prompts = results['prompt_masks'].masks
    assert prompts.shape == (2, H, W)
    assert prompts[0, 10, 9] == 1 and prompts[0].sum() < 50
    assert prompts[1, 20:32, 30:42].all() and prompts[1].sum() == 144
    depth = results['gt_depth_map']
    assert depth.dtype == np.float32 and depth.shape == (H, W)
    np.testing.assert_allclose(depth[:, W // 2:], 1.5)
    np.testing.assert_array_equal(depth[:, :W // 2], 0)


def test_resize_pad_maps_every_field_to_the_canvas(files):
    original = loaded(files)
    boxes0 = original['gt_bboxes'].tensor.clone()
    keypoints0 = original['gt_keypoints'].copy()
    results = ResizePadToCanvas(size=S)(copy.deepcopy(original))
    assert results['img'].shape == (S, S, 3)
    assert results['img_shape'] == (24, 32) and results['pad_shape'] == (S, S)
    assert results['ori_shape'] == (H, W)
    sx, sy = results['scale_factor']
    assert (sx, sy) == pytest.approx((0.5, 0.5))
    # back to the original frame
    boxes = results['gt_bboxes'].tensor
    back = boxes / torch.tensor([sx, sy, sx, sy])
    torch.testing.assert_close(back, boxes0)
    kp = results['gt_keypoints']
    np.testing.assert_allclose(kp[..., 0] / sx, keypoints0[..., 0])
    np.testing.assert_allclose(kp[..., 1] / sy, keypoints0[..., 1])
    np.testing.assert_array_equal(kp[..., 2], keypoints0[..., 2])
    assert results['gt_masks'].masks.shape == (3, S, S)
    assert results['prompt_masks'].masks.shape == (2, S, S)
    # the prompts still cover what they marked, the padding is empty
    prompts = results['prompt_masks'].masks
    assert prompts[0, int(10 * sy), int(9 * sx)] == 1
    assert prompts[1, 10:16, 15:21].all()
    assert prompts[:, 24:, :].sum() == 0 and results['img'][24:].sum() == 0
    depth = results['gt_depth_map']
    assert depth.shape == (S, S)
    np.testing.assert_allclose(depth[:24, 16:], 1.5)
    np.testing.assert_array_equal(depth[24:], 0)


def test_render_conversation_text_targets_and_groups():
    info = make_info()
    results = RenderConversation(image_token_len=N_IMG, region_token_len=N_REG)(info)
    text = ''.join(s.text for s in results['text_segments'])
    assert text.count('<image>') == N_IMG and text.count('<region>') == 2 * N_REG
    assert 'interactive grounding to box' in text
    cot_1 = compose_cot([('red square', 'box', 1)])
    cot_2 = compose_cot([('circle', 'box', 1), ('squares', 'box', 2)])
    trained = ''.join(s.text for s in results['text_segments'] if s.trained)
    assert trained == f'{cot_1}{ANSWER_1}{END_OF_TURN}{cot_2}{ANSWER_2}{END_OF_TURN}'
    assert text.index('USER: <image>') < text.index(' ASSISTANT: ' + cot_1)
    assert results['target_indices'] == [0, 1, 0, 2]
    assert results['target_group_ids'] == [0, 1, 2, 2]
    assert results['target_turns'] == [0, 1, 1, 1]
    assert results['prompt_turns'] == [0, 1]


def test_vd_cot_off_trains_the_answers_alone():
    """The paper's ablation without VD-CoT: the same targets, no <Task> block."""
    results = RenderConversation(image_token_len=N_IMG, region_token_len=N_REG,
                                 vd_cot=False)(make_info())
    trained = ''.join(s.text for s in results['text_segments'] if s.trained)
    assert trained == f'{ANSWER_1}{END_OF_TURN}{ANSWER_2}{END_OF_TURN}'
    assert results['target_indices'] == [0, 1, 0, 2]


def test_text_only_task_gets_the_false_cot_block():
    rendered = render_conversation('caption', [
        {'from': 'human', 'value': '<image>\nDescribe the image.'},
        {'from': 'gpt', 'value': 'Two squares and a circle.'}])
    trained = ''.join(s.text for s in rendered.segments if s.trained)
    assert trained == compose_cot([]) + 'Two squares and a circle.' + END_OF_TURN
    assert rendered.target_indices == []


def test_render_rejects_refs_that_disagree_with_the_answer():
    info = make_info()
    info['conversations'][1]['refs'] = [0, 1]
    with pytest.raises(ValueError, match=r"rec_0.*'refs' has 2 entries"):
        RenderConversation()(info)


def _tokenized(tokenizer_cfg, max_length=1024, test_mode=False):
    results = RenderConversation(image_token_len=N_IMG, region_token_len=N_REG,
                                 test_mode=test_mode)(make_info())
    results['prompt_masks'] = BitmapMasks(np.zeros((2, 4, 4), np.uint8), 4, 4)
    results['prompt_masks'].masks[1, 0, 0] = 1
    return TokenizeConversation(tokenizer=tokenizer_cfg, max_length=max_length)(results)


def test_labels_cover_exactly_the_answers(tokenizer_cfg):
    tokenizer = build_tokenizer(tokenizer_cfg)
    results = _tokenized(tokenizer_cfg)
    ids, labels = results['input_ids'], results['labels']
    assert ids.shape == labels.shape and ids[0] == tokenizer.bos_token_id
    trained = labels != IGNORE_INDEX
    np.testing.assert_array_equal(labels[trained], ids[trained])
    cots = compose_cot([('red square', 'box', 1)]), compose_cot([('circle', 'box', 1),
                                                                 ('squares', 'box', 2)])
    expected = f'{cots[0]}{ANSWER_1}</s>{cots[1]}{ANSWER_2}</s>'
    assert tokenizer.decode(ids[trained].tolist()) == expected
    untrained = tokenizer.decode(ids[~trained].tolist())
    assert '<REF>' not in untrained and '<Task>' not in untrained and 'USER:' in untrained
    assert untrained.count('<image>') == N_IMG and untrained.count('<region>') == 2 * N_REG
    ref_id = tokenizer.convert_tokens_to_ids('<REF>')
    assert (ids[trained] == ref_id).sum() == len(results['target_indices']) == 4
    assert (ids == tokenizer.eos_token_id).sum() == 2


def test_truncation_drops_whole_rounds(tokenizer_cfg):
    full = _tokenized(tokenizer_cfg)
    first_end = int(np.flatnonzero(full['input_ids'] == build_tokenizer(
        tokenizer_cfg).eos_token_id)[0]) + 1
    cut = _tokenized(tokenizer_cfg, max_length=len(full['input_ids']) - 1)
    np.testing.assert_array_equal(cut['input_ids'], full['input_ids'][:first_end])
    np.testing.assert_array_equal(cut['labels'], full['labels'][:first_end])
    assert cut['target_indices'] == [0] and cut['target_group_ids'] == [0]
    assert cut['prompt_turns'] == [0] and len(cut['prompt_masks']) == 1
    assert cut['prompt_masks'].masks[0, 0, 0] == 0  # the first prompt was kept
    with pytest.raises(ConversationTooLongError, match=r"'rec_0'.*first round"):
        _tokenized(tokenizer_cfg, max_length=first_end - 1)


def test_dropped_rounds_are_logged_with_their_count(tokenizer_cfg, mmengine_warnings):
    total = len(_tokenized(tokenizer_cfg)['input_ids'])
    del mmengine_warnings[:]
    cut = _tokenized(tokenizer_cfg, max_length=total - 1)
    _tokenized(tokenizer_cfg, max_length=total)
    kept = len(cut['input_ids'])
    assert mmengine_warnings == [
        f"TokenizeConversation: record 'rec_0': {total} tokens, more than "
        f'max_length={total - 1}: kept the first 1 of 2 rounds ({kept} tokens), dropped 1 '
        f'trailing rounds ({total - kept} tokens)']


def test_test_mode_input_longer_than_max_length_is_a_typed_error(tokenizer_cfg):
    length = len(_tokenized(tokenizer_cfg, test_mode=True)['input_ids'])
    with pytest.raises(ConversationTooLongError,
                       match=rf"'rec_0': the test input has {length} tokens, more than "
                       rf'max_length={length - 1}'):
        _tokenized(tokenizer_cfg, max_length=length - 1, test_mode=True)


def test_test_mode_input_stops_at_the_last_assistant_prefix(tokenizer_cfg):
    tokenizer = build_tokenizer(tokenizer_cfg)
    train = _tokenized(tokenizer_cfg)
    test = _tokenized(tokenizer_cfg, test_mode=True)
    assert 'labels' not in test and test['gt_answer'] == ANSWER_2
    assert tokenizer.decode(test['input_ids'].tolist()).endswith(' ASSISTANT: ')
    start = int(np.flatnonzero(train['labels'] != IGNORE_INDEX)[-1])
    second_answer = np.flatnonzero(train['labels'][:start] == IGNORE_INDEX)[-1] + 1
    np.testing.assert_array_equal(test['input_ids'], train['input_ids'][:second_answer])
    assert test['target_indices'] == [1, 0, 2] and test['target_group_ids'] == [0, 1, 1]
    assert len(test['prompt_masks']) == 2


def test_full_pipeline_packs_the_internals_contract(files, tokenizer_cfg):
    init_default_scope('mmrefvlm')
    transforms = refvlm_pipeline(S, tokenizer_cfg, image_token_len=N_IMG,
                                 region_token_len=N_REG)
    transforms[-1]['scene_boxes'] = True
    pipeline = Compose(transforms)
    out = pipeline(make_info(*files))
    inputs, sample = out['inputs'], out['data_samples']
    assert inputs.dtype == torch.uint8 and inputs.shape == (3, S, S)
    gt = sample.gt_instances
    assert len(gt) == 4
    expected = torch.tensor([[4, 6, 14, 14], [30, 20, 42, 32], [4, 6, 14, 14],
                             [50, 30, 60, 46]]) * 0.5
    torch.testing.assert_close(gt.bboxes, expected)
    assert gt.masks.masks.shape == (4, S, S) and gt.masks.masks[1].sum() == 0
    assert gt.keypoints.shape == (4, 2, 3)
    assert gt.labels.tolist() == [1, 0, 1, 0]  # 'triangle' is not in classes → 0
    assert gt.group_ids.tolist() == [0, 1, 2, 2]
    torch.testing.assert_close(gt.depths, torch.tensor([2.5, 1.0, 2.5, 0.0]))
    assert sample.gt_depth_map.data.shape == (1, S, S)
    assert sample.prompt_masks.shape == (2, S, S) and sample.prompt_masks.dtype == torch.float32
    assert sample.input_ids.dtype == torch.long and sample.labels.shape == sample.input_ids.shape
    meta = sample.metainfo
    assert meta['ori_shape'] == (H, W) and meta['img_shape'] == (24, 32)
    assert meta['pad_shape'] == (S, S) and meta['task'] == 'ig_box'
    assert meta['classes'] == ['circle', 'square'] and 'gt_answer' not in meta
    # every instance of the record, target or not, for the locators' dense box reading
    torch.testing.assert_close(sample.gt_scene_instances.bboxes, torch.tensor(
        [[4, 6, 14, 14], [30, 20, 42, 32], [50, 30, 60, 46]], dtype=torch.float32) * 0.5)


def test_pack_without_masks_depth_or_prompts():
    results = dict(img=np.zeros((S, S, 3), np.uint8), img_id='x', ori_shape=(S, S),
                   img_shape=(S, S), pad_shape=(S, S), scale_factor=(1.0, 1.0), task='rec',
                   gt_bboxes=np.array([[1, 2, 3, 4]], np.float32), gt_categories=['a'],
                   gt_depths=np.zeros(1, np.float32), target_indices=[0],
                   target_group_ids=[0], input_ids=np.arange(5), gt_answer='x')
    sample = PackREFVLMInputs()(results)['data_samples']
    assert 'masks' not in sample.gt_instances and 'gt_depth_map' not in sample
    assert sample.prompt_masks.shape == (0, S, S) and 'labels' not in sample
    assert sample.metainfo['gt_answer'] == 'x'
    assert 'gt_scene_instances' not in sample  # the paper's default: no scene boxes


def test_frequent_truncations_are_counted_not_each_logged(tokenizer_cfg, mmengine_warnings):
    total = len(_tokenized(tokenizer_cfg)['input_ids'])
    results = RenderConversation(image_token_len=N_IMG, region_token_len=N_REG)(make_info())
    results['prompt_masks'] = BitmapMasks(np.zeros((2, 4, 4), np.uint8), 4, 4)
    tokenize = TokenizeConversation(tokenizer=tokenizer_cfg, max_length=total - 1)
    del mmengine_warnings[:]
    for _ in range(1000):
        tokenize(copy.deepcopy(results))
    assert tokenize.truncated == 1000
    assert len(mmengine_warnings) == FULL_WARNINGS + 2  # in full, then at 100 and 1000
    assert all(m.startswith("TokenizeConversation: record 'rec_0'")
               for m in mmengine_warnings[:FULL_WARNINGS])
    assert 'further truncations are counted' in mmengine_warnings[FULL_WARNINGS - 1]
    assert mmengine_warnings[-2].startswith('TokenizeConversation: 100 samples truncated')
    assert mmengine_warnings[-1].startswith(
        f'TokenizeConversation: 1000 samples truncated to max_length={total - 1} so far in '
        "this process (the latest: record 'rec_0'")
