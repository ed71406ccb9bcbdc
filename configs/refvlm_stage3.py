# Stage 3 (paper App. D, Table 14): stage 2 plus the keypoint decoder, initialised from the
# stage-2 box decoder, trained on COCO keypoints (17 keypoints, COCO's sigmas) for 5 epochs. The
# LLM, projector and prompt encoder train with it; the box and mask decoders stay frozen.
# Data: `tools/dataset_converters/cocokpt2vtinstruct.py` output under data_root.
_base_ = './refvlm_stage2.py'

# stage 2's last weights, written by FinalWeightsHook when stage 2 ends
stage2_checkpoint = 'work_dirs/refvlm_stage2/final_weights.pth'
coco_keypoint_sigmas = [
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107,
    0.087, 0.087, 0.089, 0.089
]
model = dict(
    heads=dict(
        keypoint=dict(
            type='RefKeypointHead', num_keypoints=17, keypoint_sigmas=coco_keypoint_sigmas,
            decoder={{_base_.detr_decoder}}, box_head_checkpoint=stage2_checkpoint)),
    unit_loss_weights=dict(keypoint=1.0),
    frozen_modules=('heads.box', 'heads.mask'),
    init_cfg=dict(type='Pretrained', checkpoint=stage2_checkpoint))

data_root = 'data/coco_keypoints/'
train_dataloader = dict(
    dataset=dict(data_root=data_root, ann_file='person_keypoints_train2017.jsonl'))
val_dataloader = dict(
    dataset=dict(data_root=data_root, ann_file='person_keypoints_val2017.jsonl'))
test_dataloader = val_dataloader
val_evaluator = [dict(type='KeypointMetric', tasks=['keypoint', 'ig_keypoint'])]
test_evaluator = val_evaluator

# paper App. D, stage 3: lr 2e-5, 5 epochs of the 109,289 COCO-keypoint samples (Table 15) at
# 16 per GPU on 8 GPUs
optim_wrapper = dict(optimizer=dict(lr=2e-5))
num_train_samples = 109289
epochs = 5
global_batch_size = 16 * 8
max_iters = (epochs * num_train_samples + global_batch_size - 1) // global_batch_size  # 4270
warmup_iters = int(0.03 * max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=warmup_iters, end=max_iters,
         eta_min=0.0)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
