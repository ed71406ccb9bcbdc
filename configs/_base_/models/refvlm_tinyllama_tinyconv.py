# The paper's model shrunk to train on two CPU cores: a small trainable CNN tower instead of the
# frozen CLIP towers, a random-init 3-layer Llama over a byte-level BPE trained on the generated
# text, a 128-px canvas, small heads. It opts in, by name, to the additions that make
# localisation learn in a few hundred steps (docs/experiments.md): a ReferenceLocator in the box,
# mask and keypoint heads (with positions in the decoder values and the located box bounding the
# mask), scene boxes for the locator's dense reading, phrase queries in the router, cross-unit
# training of the box and mask heads, and packed LM sequences.
_base_ = ['./refvlm_vicuna7b_clipl-convnextl.py']

canvas_size = 128
global_level, global_pool = 2, 4  # the stride-16 level, pooled to 4 x 4 tokens
image_token_len = global_pool**2
region_grid = (2, 2)
region_token_len = region_grid[0] * region_grid[1]
# written beside the generated data by tools/misc/build_tokenizer.py
tokenizer = dict(type='generated', path='data/synthetic/tokenizer')
system = ''  # no system prompt: every token counts on a CPU
max_length = 320

embed_dims = 128
attention = dict(embed_dims=embed_dims, num_heads=4)
decoder = dict(
    num_layers=3,
    layer_cfg=dict(
        self_attn_cfg=attention, cross_attn_cfg=attention,
        ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=256)),
    positions_in_values=True)
pixel_decoder = dict(type='PixelDecoder', norm_cfg=dict(type='GN', num_groups=8),
                     act_cfg=dict(type='ReLU'))
# locate, then read; strides 8-32 only (the finest level costs 4x the cross-attention)
located_decoding = dict(decoder=decoder, num_groups=8, memory_levels=(1, 2, 3),
                        locator=dict(type='ReferenceLocator'))

model = dict(
    data_preprocessor=dict(mean=[127.5] * 3, std=[127.5] * 3, tokenizer=tokenizer),
    backbone=dict(
        _delete_=True, type='TinyConvTower', channels=(32, 64, 128, 256),
        global_level=global_level, global_pool=global_pool, image_size=canvas_size),
    neck=dict(
        lm=dict(
            _delete_=True,
            type='config',
            config=dict(
                model_type='llama', hidden_size=256, intermediate_size=512,
                num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=4,
                max_position_embeddings=512, tie_word_embeddings=True)),
        tokenizer=tokenizer,
        aggregation=dict(grid=region_grid),
        gradient_checkpointing=False,
        # the batch's sequences end to end in fewer rows (same states and loss)
        packing=True,
        max_new_tokens=160),
    router=dict(type='LatentEmbeddingRouter', phrase_queries=dict(type='PhraseQueries')),
    # REC queries also train the mask head, RES queries the box head
    train_cfg=dict(extra_units=dict(box=('mask', ), mask=('box', ))),
    heads=dict(
        box=located_decoding,
        # Mask2Former's sigmoid BCE + dice instead of MaskFormer's focal + dice: trained from
        # scratch for a few hundred steps, focal's down-weighted positives leave every pixel
        # below 0.5
        mask=dict(
            **located_decoding, mask_prior=dict(type='LocatedBoxPrior'),
            pixel_decoder=pixel_decoder,
            assigner=dict(
                type='GroupHungarianAssigner',
                match_costs=[
                    dict(type='CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                    dict(type='DiceCost', weight=5.0, pred_act=True, eps=1.0)
                ]),
            loss_mask=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=5.0),
            loss_dice=dict(type='DiceLoss', use_sigmoid=True, activate=True, naive_dice=True,
                           eps=1.0, loss_weight=5.0)),
        # the synthetic "house" family: 5 named keypoints (data/synthetic/meta.json)
        keypoint=dict(
            type='RefKeypointHead', **located_decoding, num_keypoints=5,
            keypoint_sigmas=[0.025] * 5),
        depth=dict(type='RefDepthHead', embed_dims=64, init_depth=5.0,
                   pixel_decoder=pixel_decoder)))

model_inputs = dict(
    ResizePadToCanvas=dict(size=canvas_size),
    RenderConversation=dict(system=system, image_token_len=image_token_len,
                            region_token_len=region_token_len),
    TokenizeConversation=dict(tokenizer=tokenizer, max_length=max_length),
    PackREFVLMInputs=dict(scene_boxes=True))
train_pipeline = [
    dict(transform, **model_inputs.get(transform['type'], {}))
    for transform in _base_.train_pipeline
]
test_pipeline = [
    dict(transform, **model_inputs.get(transform['type'], {}))
    for transform in _base_.test_pipeline
]
