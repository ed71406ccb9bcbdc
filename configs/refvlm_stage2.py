# Stage 2 (paper App. D): LLM, projector, box and mask decoders trained on all tasks; both
# vision towers frozen. `tools/dist_train.sh configs/refvlm_stage2.py 8`
_base_ = [
    '_base_/models/refvlm_vicuna7b_clipl-convnextl.py', '_base_/datasets/vtinstruct.py',
    '_base_/schedules/schedule_stage2.py', '_base_/schedules/strategy_deepspeed_zero2.py',
    '_base_/default_runtime.py'
]
# Start from stage 1's weights (projector aligned), the plain file FinalWeightsHook writes when
# stage 1 ends. Loaded as the model's init_cfg, before DeepSpeed wraps the model: under
# FlexibleRunner + DeepSpeed, `load_from` only reads DeepSpeed checkpoint directories (mmengine
# issue #1499). Missing keys (the heads, new in this stage) are logged.
stage1_weights = 'work_dirs/refvlm_stage1/final_weights.pth'
model = dict(
    init_cfg=dict(type='Pretrained', checkpoint=stage1_weights),
    # paper Eq. 9: the weight of each decoder's losses (the LM's is `lm_loss_weight`)
    unit_loss_weights=dict(box=1.0, mask=1.0))
load_from = None
custom_hooks = [dict(type='FinalWeightsHook')]

train_dataloader = dict(dataset=dict(pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(dataset=dict(pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
