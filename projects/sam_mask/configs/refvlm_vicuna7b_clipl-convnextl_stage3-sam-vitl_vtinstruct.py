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

# Table 15, Stage3-SAM: one JSONL file per task family (the converters' outputs for GranD,
# RefCOCO/+/g, COCO-ReM, ADE20k and Cityscapes, concatenated), drawn in the paper's proportions
data_root = 'data/vtinstruct/'
stage3_sam_families = ['referring_expression', 'grounded_conversation', 'open_vocabulary']
train_dataloader = dict(
    sampler=dict(_delete_=True, type='MixtureInfiniteSampler', ratios=[32.91, 23.03, 44.06]),
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[
            dict(type='VTInstructDataset', data_root=data_root,
                 ann_file=f'stage3_sam/{family}.jsonl', data_prefix=dict(img_path=''),
                 on_bad_record='skip', pipeline={{_base_.train_pipeline}})
            for family in stage3_sam_families
        ]))
# RES on RefCOCO val (tools/dataset_converters/refcoco2vtinstruct.py)
val_dataloader = dict(dataset=dict(data_root='data/refcoco/', ann_file='refcoco-val.jsonl'))
test_dataloader = val_dataloader
val_evaluator = [dict(type='RESMetric')]
test_evaluator = val_evaluator

num_train_samples = 2165892
epochs = 5
global_batch_size = 16 * 8
max_iters = (epochs * num_train_samples + global_batch_size - 1) // global_batch_size  # 84606
warmup_iters = int(0.03 * max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=warmup_iters, end=max_iters,
         eta_min=0.0)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
