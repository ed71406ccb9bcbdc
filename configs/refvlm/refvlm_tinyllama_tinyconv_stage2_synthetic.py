# The offline main job: the stage-2 recipe shrunk to train and evaluate on two CPU cores within
# minutes, on the generated shape scenes (`tools/dataset_converters/generate_synthetic.py`, six
# REC/RES expressions per training image: `tools/demo.sh`).
# What changes from configs/refvlm_stage2.py: a small trainable CNN tower instead of the frozen
# CLIP towers, a random-init 3-layer Llama over a byte-level BPE trained on the generated text,
# small heads, phrase pooling and phrase embeddings in the router, cross-unit training of the
# box and mask heads, packed LM sequences, a 128-px canvas, and an 880-iteration schedule
# (batch 8) that fits the 20-minute main job.
_base_ = ['../refvlm_stage2.py']

data_root = 'data/synthetic/'
canvas_size = 128
image_token_len = 16  # TinyConvTower: stride-16 level (8 x 8) pooled to 4 x 4
region_grid = (2, 2)
region_token_len = 4
max_length = 320
tokenizer = dict(type='generated', path=data_root + 'tokenizer')
system = ''  # no system prompt: every token counts on a CPU

model = dict(
    init_cfg=None,  # trained from scratch, not from stage-1 weights
    data_preprocessor=dict(mean=[127.5] * 3, std=[127.5] * 3, tokenizer=tokenizer),
    backbone=dict(
        _delete_=True, type='TinyConvTower', channels=(32, 64, 128, 256), global_level=2,
        global_pool=4, image_size=canvas_size),
    neck=dict(
        lm=dict(
            _delete_=True,
            type='config',
            # 3 layers, MLP 512: 20 % less time a step than 4 layers / 704, which buys more
            # steps for the heads (internals §9.4: REC 0.565 / RES cIoU 0.496 against
            # 0.598 / 0.443 at equal steps)
            config=dict(
                model_type='llama', hidden_size=256, intermediate_size=512,
                num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=4,
                max_position_embeddings=512, tie_word_embeddings=True)),
        tokenizer=tokenizer,
        aggregation=dict(grid=region_grid),
        gradient_checkpointing=False,
        # the batch's sequences end to end in fewer rows (same states and loss, internals §3)
        packing=True,
        max_new_tokens=160),
    # the <REF> states of a small LLM trained from scratch carry their phrase weakly: queries
    # start from a learned embedding of the phrase and take in the <REF> state (plus the
    # phrase tokens' mean state) through a zero-init gate (internals §9.2, §9.3)
    router=dict(type='LatentEmbeddingRouter', phrase_pooling=True, phrase_embedding=True),
    # REC queries also train the mask head, RES queries the box head (internals §6, §9.5)
    train_cfg=dict(extra_units=dict(box=('mask', ), mask=('box', ))),
    heads=dict(
        # box and keypoint decoders read strides 8-32 only (336 memory tokens instead of 1360):
        # 2x cheaper, equal accuracy measured with phrase-embedding queries (300 steps)
        box=dict(embed_dims=128, num_layers=3, num_heads=4, feedforward_channels=256,
                 num_groups=8, memory_levels=(1, 2, 3)),
        # Mask2Former's sigmoid BCE + dice instead of MaskFormer's focal + dice: trained from
        # scratch for a few hundred steps, focal's down-weighted positives leave every pixel
        # below 0.5 (measured with phrase-embedding queries after 200 steps: cIoU 0.02 with
        # focal, 0.30 with BCE)
        mask=dict(embed_dims=128, num_layers=3, num_heads=4, feedforward_channels=256,
                  num_groups=8, memory_levels=(1, 2, 3),
                  pixel_decoder=dict(
                      type='PixelDecoder', norm_cfg=dict(type='GN', num_groups=8),
                      act_cfg=dict(type='ReLU')),
                  assigner=dict(
                      type='GroupHungarianAssigner',
                      match_costs=[
                          dict(type='CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                          dict(type='DiceCost', weight=5.0, pred_act=True, eps=1.0)
                      ]),
                  loss_mask=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=5.0),
                  loss_dice=dict(type='DiceLoss', use_sigmoid=True, activate=True,
                                 naive_dice=True, eps=1.0, loss_weight=5.0)),
        # the synthetic "house" family: 5 named keypoints (data/synthetic/meta.json)
        keypoint=dict(
            type='RefKeypointHead', num_keypoints=5, keypoint_sigmas=[0.025] * 5,
            embed_dims=128, num_layers=3, num_heads=4, feedforward_channels=256,
            num_groups=8, memory_levels=(1, 2, 3)),
        depth=dict(
            type='RefDepthHead', embed_dims=64, num_groups=8, init_depth=5.0,
            pixel_decoder=dict(
                type='PixelDecoder', norm_cfg=dict(type='GN', num_groups=8),
                act_cfg=dict(type='ReLU')))),
    test_cfg=dict(max_new_tokens=160))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadVTInstructAnnotations'),
    dict(type='ResizePadToCanvas', size=canvas_size),
    dict(type='RenderConversation', system=system, image_token_len=image_token_len,
         region_token_len=region_token_len),
    dict(type='TokenizeConversation', tokenizer=tokenizer, max_length=max_length),
    dict(type='PackREFVLMInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadVTInstructAnnotations'),
    dict(type='ResizePadToCanvas', size=canvas_size),
    dict(type='RenderConversation', system=system, image_token_len=image_token_len,
         region_token_len=region_token_len, test_mode=True),
    dict(type='TokenizeConversation', tokenizer=tokenizer, max_length=max_length),
    dict(type='PackREFVLMInputs'),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
test_dataloader = dict(
    batch_size=32,
    num_workers=1,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
val_dataloader = None
test_evaluator = [
    dict(type='RECMetric'),
    dict(type='RESMetric'),
    dict(type='InteractiveGroundingMetric'),
    dict(type='CaptionMetric'),
    dict(type='VQAMetric'),
    dict(type='POPEMetric'),
    dict(type='GCGMetric', text_encoder=dict(type='minilm')),
    dict(type='OVDMetric'),
    dict(type='FOVDMetric', text_encoder=dict(type='minilm')),
    dict(type='KeypointMetric', tasks=['keypoint', 'ig_keypoint']),
    dict(type='DepthMetric'),
]
# the main job evaluates once, with tools/test.py, after training
val_cfg = None
val_evaluator = None

max_iters = 880
warmup_iters = 100
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    # fused: one kernel for all 363 tensors (7 instead of 31 ms a step on the two cores)
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.98), weight_decay=0.0, fused=True),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=warmup_iters, end=max_iters,
         eta_min=1e-5)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters + 1)
default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1, save_last=True),
    visualization=dict(_delete_=True, type='DetVisualizationHook', draw=False))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
load_from = None
strategy = None  # one CPU process: MMEngine's Runner, no DeepSpeed
