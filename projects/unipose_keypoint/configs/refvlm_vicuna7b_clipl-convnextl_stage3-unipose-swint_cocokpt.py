# Stage3-UniPose (paper App. D, Tables 14-15): the stage-3 model with its keypoint decoder
# swapped for a UniPose-style one (Swin-T Grounding DINO instance stage + deformable keypoint
# stage); the LLM, projector, prompt encoder and the new decoder (backbone frozen) train, the box
# and mask decoders stay frozen. lr 2e-5, 5 epochs of COCO keypoints (Table 15: 100%) at 16 per
# GPU on 8 GPUs: stage 3's data and schedule, inherited.
#   tools/dist_train.sh projects/unipose_keypoint/configs/refvlm_vicuna7b_clipl-convnextl_stage3-unipose-swint_cocokpt.py 8
_base_ = '../../../configs/refvlm_stage3.py'
custom_imports = dict(imports=['mmrefvlm', 'projects.unipose_keypoint.unipose_keypoint'],
                      allow_failed_imports=False)

# The instance stage starts from Grounding DINO Swin-T in MMDetection's layout (https://download.
# openmmlab.com/mmdetection/v3.0/grounding_dino/groundingdino_swint_ogc_mmdet-822d7e9d.pth),
# downloaded beforehand; the keypoint stage from scratch (UniPose's released weights are in
# another layout: no converter ships, see the README)
gdino_checkpoint = 'checkpoints/groundingdino_swint_ogc_mmdet-822d7e9d.pth'
stage3_checkpoint = 'work_dirs/refvlm_stage3/final_weights.pth'
model = dict(
    heads=dict(
        keypoint=dict(
            _delete_=True, type='UniPoseRefKeypointHead', num_keypoints=17,
            keypoint_sigmas={{_base_.coco_keypoint_sigmas}}, image_size=800,
            image_mean={{_base_.model.data_preprocessor.mean}},
            image_std={{_base_.model.data_preprocessor.std}},
            gdino_checkpoint=gdino_checkpoint)),
    frozen_modules=('heads.box', 'heads.mask'),
    init_cfg=dict(type='Pretrained', checkpoint=stage3_checkpoint))
