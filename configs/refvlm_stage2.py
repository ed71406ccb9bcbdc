# Stage 2 (paper App. D): LLM, projector, box and mask decoders trained on all tasks; both
# vision towers frozen. `tools/dist_train.sh configs/refvlm_stage2.py 8`
_base_ = [
    '_base_/models/refvlm_vicuna7b_clipl-convnextl.py', '_base_/datasets/vtinstruct.py',
    '_base_/schedules/schedule_stage2.py', '_base_/default_runtime.py'
]
# Start from the stage-1 checkpoint (projector aligned); a config key like every other path.
load_from = 'work_dirs/refvlm_stage1/iter_final.pth'

train_dataloader = dict(dataset=dict(pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(dataset=dict(pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
