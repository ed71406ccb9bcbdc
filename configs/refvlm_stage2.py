# Stage 2 (paper App. D): LLM, projector, box and mask decoders trained on all tasks; both
# vision towers frozen. `tools/dist_train.sh configs/refvlm_stage2.py 8`
_base_ = [
    '_base_/models/refvlm_vicuna7b_clipl-convnextl.py', '_base_/datasets/vtinstruct.py',
    '_base_/schedules/schedule_stage2.py', '_base_/default_runtime.py'
]
# Start from the stage-1 checkpoint (projector aligned); a config key like every other path.
load_from = 'work_dirs/refvlm_stage1/iter_final.pth'

system = ('A chat between a curious user and an artificial intelligence assistant. The '
          "assistant gives helpful, detailed, and polite answers to the user's questions.")
max_length = 2048
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadVTInstructAnnotations'),
    dict(type='ResizePadToCanvas', size={{_base_.canvas_size}}),
    dict(type='RenderConversation', system=system, image_token_len={{_base_.image_token_len}},
         region_token_len={{_base_.region_token_len}}),
    dict(type='TokenizeConversation', tokenizer={{_base_.tokenizer}}, max_length=max_length),
    dict(type='PackREFVLMInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadVTInstructAnnotations'),
    dict(type='ResizePadToCanvas', size={{_base_.canvas_size}}),
    dict(type='RenderConversation', system=system, image_token_len={{_base_.image_token_len}},
         region_token_len={{_base_.region_token_len}}, test_mode=True),
    dict(type='TokenizeConversation', tokenizer={{_base_.tokenizer}}, max_length=max_length),
    dict(type='PackREFVLMInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
