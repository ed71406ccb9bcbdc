# Stage3-UniPose (paper App. D, Tables 14-15): the stage-3 model with its keypoint decoder
# swapped for a UniPose-style two-level decoder (projects/unipose_keypoint: ours, built from
# MMDetection's Deformable-DETR layers at UniPose's size: 256 wide, 6 encoder layers, 2 instance
# and 4 keypoint decoder layers). The LLM, projector, prompt encoder and the new decoder train;
# the box and mask decoders stay frozen. lr 2e-5, 5 epochs of COCO keypoints (Table 15: 100 %
# keypoint detection, 109,289 samples) at 16 per GPU on 8 GPUs: the schedule and data of
# configs/refvlm_stage3.py, inherited.
#   tools/dist_train.sh projects/unipose_keypoint/configs/refvlm_vicuna7b_clipl-convnextl_stage3-unipose_vtinstruct.py 8
_base_ = '../../../configs/refvlm_stage3.py'
custom_imports = dict(imports=['mmrefvlm', 'projects.unipose_keypoint.unipose_keypoint'],
                      allow_failed_imports=False)

# weights of this decoder (keys of UniPoseDecoder, or a REFVLM checkpoint holding the head),
# e.g. from an earlier run; None: random init. The official UniPose release has another layout
# and is refused by name.
unipose_checkpoint = None
# stage 3's last weights, written by FinalWeightsHook when stage 3 ends
stage3_checkpoint = 'work_dirs/refvlm_stage3/final_weights.pth'
coco_keypoint_names = [
    'nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder', 'right_shoulder',
    'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_hip', 'right_hip',
    'left_knee', 'right_knee', 'left_ankle', 'right_ankle'
]
model = dict(
    heads=dict(
        keypoint=dict(
            _delete_=True, type='UniPoseRefKeypointHead', keypoint_names=coco_keypoint_names,
            keypoint_sigmas={{_base_.coco_keypoint_sigmas}},
            # Deformable DETR's strides 8-32 of the ConvNeXt pyramid
            memory_levels=(1, 2, 3), unipose_checkpoint=unipose_checkpoint)),
    init_cfg=dict(type='Pretrained', checkpoint=stage3_checkpoint))
