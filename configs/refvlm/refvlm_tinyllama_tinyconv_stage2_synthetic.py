# The offline main job: the stage-2 recipe shrunk to train and evaluate on two CPU cores within
# minutes, on the generated shape scenes (`tools/demo.sh`: six REC/RES expressions per training
# image).
_base_ = [
    '../_base_/models/refvlm_tinyllama_tinyconv.py', '../_base_/datasets/synthetic.py',
    '../_base_/schedules/schedule_880it_cpu.py', '../_base_/default_runtime.py'
]
train_dataloader = dict(dataset=dict(pipeline={{_base_.train_pipeline}}))
test_dataloader = dict(dataset=dict(pipeline={{_base_.test_pipeline}}))
default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(interval={{_base_.max_iters}}, max_keep_ckpts=1, save_last=True),
    visualization=dict(_delete_=True, type='DetVisualizationHook', draw=False))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
