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
            decoder={{_base_.detr_decoder}}, box_head_checkpoint='${stage2_checkpoint}')),
    unit_loss_weights=dict(keypoint=1.0),
    frozen_modules=('heads.box', 'heads.mask'),
    init_cfg=dict(type='Pretrained', checkpoint='${stage2_checkpoint}'))

data_root = 'data/coco_keypoints/'
train_ann_file = 'person_keypoints_train2017.jsonl'
val_ann_file = 'person_keypoints_val2017.jsonl'
train_dataloader = dict(
    sampler=dict(ratios=dict(_delete_=True, keypoint_detection=100.0)))  # paper Table 15
val_evaluator = [dict(type='KeypointMetric', tasks=['keypoint', 'ig_keypoint'])]
test_evaluator = val_evaluator

# paper App. D, stage 3: lr 2e-5, 5 epochs of the 109,289 COCO-keypoint samples (Table 15) at
# 16 per GPU on 8 GPUs (the schedule's warm-up and cosine follow max_iters)
optim_wrapper = dict(optimizer=dict(lr=2e-5))
num_train_samples = 109289
epochs = 5
global_batch_size = 16 * 8
# a reference: a child config that sets num_train_samples (or epochs) moves max_iters, and
# with it the loop, the warm-up and the cosine's end; --cfg-options max_iters=N still wins
max_iters = '${(epochs * num_train_samples + global_batch_size - 1) // global_batch_size}'  # 4270
