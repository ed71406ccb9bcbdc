# Stage 3 (paper App. D): stage 2 plus the keypoint decoder, initialised from the stage-2 box
# decoder, trained on COCO keypoints (17 keypoints, COCO's sigmas). Only `model.heads` and the
# data change. Data: `tools/dataset_converters/cocokpt2vtinstruct.py` output under data_root.
_base_ = './refvlm_stage2.py'

stage2_checkpoint = 'work_dirs/refvlm_stage2/iter_60000.pth'
coco_keypoint_sigmas = [
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107,
    0.087, 0.087, 0.089, 0.089
]
model = dict(
    heads=dict(
        keypoint=dict(
            type='RefKeypointHead', num_keypoints=17, keypoint_sigmas=coco_keypoint_sigmas,
            decoder={{_base_.detr_decoder}}, box_head_checkpoint=stage2_checkpoint)))
load_from = stage2_checkpoint

data_root = 'data/coco_keypoints/'
train_dataloader = dict(
    dataset=dict(data_root=data_root, ann_file='person_keypoints_train2017.jsonl'))
val_dataloader = dict(
    dataset=dict(data_root=data_root, ann_file='person_keypoints_val2017.jsonl'))
test_dataloader = val_dataloader
val_evaluator = [dict(type='KeypointMetric', tasks=['keypoint', 'ig_keypoint'])]
test_evaluator = val_evaluator

# paper App. D, stage 3: lr 2e-5, 5 epochs
optim_wrapper = dict(optimizer=dict(lr=2e-5))
