# Stage3-SAM (paper App. D, Tables 14-15): the stage-3 model with its mask decoder swapped for
# SAM's (ViT-L, the paper's `sam_vit_l`); the LLM, projector, prompt encoder and SAM's mask
# decoder train, SAM's image encoder and the box and keypoint decoders stay frozen. lr 2e-5,
# 5 epochs of the Table-15 Stage3-SAM mixture at 16 per GPU on 8 GPUs.
#   tools/dist_train.sh projects/sam_mask/configs/refvlm_vicuna7b_clipl-convnextl_stage3-sam-vitl_vtinstruct.py 8
_base_ = '../../../configs/refvlm_stage3.py'
custom_imports = dict(imports=['mmrefvlm', 'projects.sam_mask.sam_mask'],
                      allow_failed_imports=False)

# SAM's released ViT-L weights (https://dl.fbaipublicfiles.com/segment_anything/
# sam_vit_l_0b3195.pth), downloaded beforehand: no hub is reached at run time
sam_checkpoint = 'checkpoints/sam_vit_l_0b3195.pth'
# stage 3's last weights, written by FinalWeightsHook when stage 3 ends
stage3_checkpoint = 'work_dirs/refvlm_stage3/final_weights.pth'
model = dict(
    heads=dict(
        mask=dict(
            _delete_=True, type='SAMRefMaskHead',
            image_encoder=dict(embed_dim=1024, depth=24, num_heads=16,
                               global_attn_indexes=(5, 11, 17, 23)),
            image_mean={{_base_.model.data_preprocessor.mean}},
            image_std={{_base_.model.data_preprocessor.std}},
            sam_checkpoint=sam_checkpoint),
        keypoint=dict(box_head_checkpoint=None)),
    frozen_modules=('heads.box', 'heads.keypoint'),
    init_cfg=dict(type='Pretrained', checkpoint=stage3_checkpoint))

# Table 15, Stage3-SAM: one JSONL (the converters' outputs for GranD, RefCOCO/+/g, COCO-ReM,
# ADE20k and Cityscapes, concatenated); the sampler draws its task families in the paper's shares
data_root = 'data/vtinstruct/'
train_ann_file = 'stage3_sam.jsonl'
train_dataloader = dict(
    sampler=dict(
        ratios=dict(_delete_=True, referring_expression=32.91, grounded_conversation=23.03,
                         open_vocabulary=44.06)))
# RES on RefCOCO val (tools/dataset_converters/refcoco2vtinstruct.py)
val_dataloader = dict(dataset=dict(data_root='data/refcoco/', ann_file='refcoco-val.jsonl'))
test_dataloader = val_dataloader
val_evaluator = [dict(type='RESMetric')]
test_evaluator = val_evaluator

# the schedule of configs/refvlm_stage3.py (5 epochs at 16 x 8) follows it
num_train_samples = 2165892
