# Stage 1 (paper App. D, Tables 14-15): only the projector is trained (LLM and ViT frozen), on
# caption/VQA, referring and GCG data whose boxes are written as numbers in the text (Shikra's
# setup): no unit heads, and no ConvNeXt tower (its pyramid only feeds the heads).
# Its last weights, work_dirs/refvlm_stage1/final_weights.pth, start stage 2.
_base_ = './refvlm_stage2.py'
model = dict(
    init_cfg=None,  # starts from the released LLM and CLIP weights
    backbone=dict(
        _delete_=True, type='OpenCLIPViTTower', model_name='ViT-L-14-336-quickgelu',
        pretrained={{_base_.clip_vit_path}}, select_layer=-2, frozen=True),
    neck=dict(freeze_lm=True, gradient_checkpointing=False),
    heads=dict(_delete_=True),
    unit_loss_weights=None)
optim_wrapper = dict(optimizer=dict(lr=1e-5))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadVTInstructAnnotations'),
    dict(type='ResizePadToCanvas', size={{_base_.canvas_size}}),
    dict(type='RenderConversation', system={{_base_.system}},
         image_token_len={{_base_.image_token_len}},
         region_token_len={{_base_.region_token_len}}, boxes_as_text=True),
    dict(type='TokenizeConversation', tokenizer={{_base_.tokenizer}},
         max_length={{_base_.max_length}}),
    dict(type='PackREFVLMInputs'),
]
# Table 15, stage 1: one JSONL file per task family (the converters' outputs concatenated),
# drawn in the paper's proportions whatever the files' sizes
data_root = 'data/vtinstruct/'
stage1_families = ['visual_understanding', 'referring_expression', 'grounded_conversation']
train_dataloader = dict(
    sampler=dict(_delete_=True, type='MixtureInfiniteSampler', ratios=[55.85, 25.58, 20.29]),
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[
            dict(type='VTInstructDataset', data_root=data_root,
                 ann_file=f'stage1/{family}.jsonl', data_prefix=dict(img_path=''),
                 on_bad_record='skip', pipeline=train_pipeline)
            for family in stage1_families
        ]))
