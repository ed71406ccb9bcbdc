# Stage 1 (paper App. D, Tables 14-15): only the projector is trained (LLM and ViT frozen), on
# caption/VQA, referring and GCG data whose boxes are written as numbers in the text (Shikra's
# setup): no unit heads, and no ConvNeXt tower (its pyramid only feeds the heads).
# Its last weights, work_dirs/refvlm_stage1/final_weights.pth, start stage 2.
_base_ = './refvlm_stage2.py'
model = dict(
    init_cfg=None,  # starts from the released LLM and CLIP weights
    backbone=dict(
        _delete_=True, type='OpenCLIPViTTower', model_name='ViT-L-14-336-quickgelu',
        pretrained='${clip_vit_path}', select_layer=-2, frozen=True),
    neck=dict(freeze_lm=True, gradient_checkpointing=False),
    heads=dict(_delete_=True),
    unit_loss_weights=None)
optim_wrapper = dict(optimizer=dict(lr=1e-5))

train_pipeline = [
    dict(type='LoadVTInstructImage'),
    dict(type='LoadVTInstructAnnotations'),
    dict(type='ResizePadToCanvas', size={{_base_.canvas_size}}),
    dict(type='RenderConversation', system={{_base_.system}},
         image_token_len={{_base_.image_token_len}},
         region_token_len={{_base_.region_token_len}}, boxes_as_text=True),
    dict(type='TokenizeConversation', tokenizer={{_base_.tokenizer}},
         max_length={{_base_.max_length}}),
    dict(type='PackREFVLMInputs'),
]
# paper Tables 14-15, stage 1: its own data (VG, Visual7W, LLaVA-Instruct, VQAv2, COCO,
# Flickr30k, RefCOCO/+/g, VCR) in these family shares (the table's sum, 101.72 %, is normalised)
train_dataloader = dict(
    sampler=dict(ratios=dict(_delete_=True, visual_understanding=55.85,
                             referring_expression=25.58, grounded_conversation=20.29)),
    dataset=dict(pipeline=train_pipeline))
train_ann_file = 'stage1.jsonl'
