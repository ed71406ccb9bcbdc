# REF-VLM at paper scale (paper §4, App. D): Vicuna-7B v1.5, CLIP-ViT-L/14-336 (global tokens,
# penultimate layer; OpenAI weights, hence QuickGELU) + CLIP-ConvNeXt-L at 512 (pyramid), both
# frozen; the paper's DETR box head and MaskFormer mask head on the <REF> queries, trained from
# scratch. Weight paths are config keys (no model hub). Also the model's input recipe (canvas,
# token counts, prompt, tokenizer): the pipelines every dataset of this model uses.
llm_path = 'checkpoints/vicuna-7b-v1.5'
# the shape of llm_path's config.json, for tools/analysis_tools/estimate_memory.py on a machine
# without the weights (the model itself reads llm_path)
llm_arch = dict(model_type='llama', hidden_size=4096, intermediate_size=11008,
                num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                vocab_size=32000, max_position_embeddings=4096)
clip_vit_path = 'checkpoints/open_clip/ViT-L-14-336/open_clip_pytorch_model.bin'
clip_convnext_path = 'checkpoints/open_clip/convnext_large_d_320/open_clip_pytorch_model.bin'
# phrase similarity of the GCG and FOVD metrics (paper App. E: CLIP-L/14-336's text tower)
clip_text_encoder = dict(type='clip', path=clip_vit_path, model_name='ViT-L-14-336-quickgelu')

canvas_size = 512  # the largest tower input; each tower resizes the canvas to its own size
vit_image_size, vit_patch_size = 336, 14
image_token_len = (vit_image_size // vit_patch_size)**2
region_grid = (4, 4)  # Mask-Guided Aggregation: one token per grid cell of a visual prompt
region_token_len = region_grid[0] * region_grid[1]
tokenizer = dict(type='pretrained', path=llm_path)
system = ('A chat between a curious user and an artificial intelligence assistant. The '
          "assistant gives helpful, detailed, and polite answers to the user's questions.")
max_length = 2048

# the DETR decoder of both heads (MMDet DetrTransformerDecoder arguments)
embed_dims = 256
attention = dict(embed_dims=embed_dims, num_heads=8, dropout=0.0, batch_first=True)
detr_decoder = dict(
    num_layers=6,
    layer_cfg=dict(
        self_attn_cfg=attention,
        cross_attn_cfg=attention,
        ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=1024, num_fcs=2, ffn_drop=0.0,
                     act_cfg=dict(type='ReLU', inplace=True))),
    return_intermediate=True)

model = dict(
    type='REFVLM',
    data_preprocessor=dict(
        type='REFVLMDataPreprocessor',
        mean=[122.770938, 116.7460125, 104.09373615],  # CLIP's mean/std, RGB, 0-255
        std=[68.5005327, 66.6321579, 70.32316305],
        bgr_to_rgb=True,
        tokenizer=tokenizer),
    backbone=dict(
        type='DualCLIPTower',
        global_tower=dict(
            type='OpenCLIPViTTower', model_name='ViT-L-14-336-quickgelu',
            pretrained=clip_vit_path, select_layer=-2, frozen=True),
        dense_tower=dict(
            type='OpenCLIPConvNeXtTower', model_name='convnext_large_d_320',
            pretrained=clip_convnext_path, image_size=canvas_size, frozen=True)),
    neck=dict(
        type='LLMNeck',
        # fp32 weights: the strategy computes in bf16 and the fp32 copy is the master (bf16
        # weights under a plain AMP wrapper round most lr-2e-6 steps away)
        lm=dict(type='pretrained', path=llm_path, torch_dtype='float32'),
        tokenizer=tokenizer,
        projector_depth=2,
        aggregation=dict(grid=region_grid, temperature=10000.0, pe_weight=1.0),
        gradient_checkpointing=True,
        max_new_tokens=512),
    heads=dict(
        box=dict(type='RefBoxHead', decoder=detr_decoder),
        mask=dict(type='RefMaskHead', decoder=detr_decoder)),
    lm_loss_weight=1.0)

# what the pipeline needs to know of the model, by transform
model_inputs = dict(
    ResizePadToCanvas=dict(size=canvas_size),
    RenderConversation=dict(system=system, image_token_len=image_token_len,
                            region_token_len=region_token_len),
    TokenizeConversation=dict(tokenizer=tokenizer, max_length=max_length))
train_pipeline = [
    dict(type=transform, **model_inputs.get(transform, {}))
    for transform in ('LoadImageFromFile', 'LoadVTInstructAnnotations', 'ResizePadToCanvas',
                      'RenderConversation', 'TokenizeConversation', 'PackREFVLMInputs')
]
test_pipeline = [
    dict(transform, test_mode=True) if transform['type'] == 'RenderConversation' else transform
    for transform in train_pipeline
]
