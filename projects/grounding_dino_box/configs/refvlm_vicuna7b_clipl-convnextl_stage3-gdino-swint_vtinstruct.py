# Stage3-gDINO (paper App. D, Tables 14-15): the stage-3 model with its box decoder swapped for
# Grounding DINO's (Swin-T, the paper's `dino_swint_ogc`); the LLM, projector, prompt encoder and
# Grounding DINO's encoder and decoder train, its Swin and the mask and keypoint decoders stay
# frozen. lr 2e-5, 5 epochs of the Table-15 Stage3-gDINO mixture at 16 per GPU on 8 GPUs.
#   tools/dist_train.sh projects/grounding_dino_box/configs/refvlm_vicuna7b_clipl-convnextl_stage3-gdino-swint_vtinstruct.py 8
_base_ = '../../../configs/refvlm_stage3.py'
custom_imports = dict(imports=['mmrefvlm', 'projects.grounding_dino_box.grounding_dino_box'],
                      allow_failed_imports=False)

# MMDetection's conversion of the official Swin-T weights (https://download.openmmlab.com/
# mmdetection/v3.0/grounding_dino/groundingdino_swint_ogc_mmdet-822d7e9d.pth), downloaded
# beforehand: no hub is reached at run time
gdino_checkpoint = 'checkpoints/groundingdino_swint_ogc_mmdet-822d7e9d.pth'
# Grounding DINO's BERT reads the phrases: the tokenizer and config of `bert-base-uncased`
# (https://huggingface.co/bert-base-uncased, saved to a local folder beforehand); its weights
# come from gdino_checkpoint
bert_path = 'checkpoints/bert-base-uncased'
# stage 3's last weights, written by FinalWeightsHook when stage 3 ends
stage3_checkpoint = 'work_dirs/refvlm_stage3/final_weights.pth'
model = dict(
    heads=dict(
        box=dict(
            _delete_=True, type='GroundingDINORefBoxHead',
            # Grounding DINO's test scale (its short side 800) for the 512-px canvas
            image_size=800,
            text_encoder=dict(
                type='BertModel', name=bert_path, pad_to_max=False,
                use_sub_sentence_represent=True,
                special_tokens_list=['[CLS]', '[SEP]', '.', '?'], add_pooling_layer=True),
            image_mean={{_base_.model.data_preprocessor.mean}},
            image_std={{_base_.model.data_preprocessor.std}},
            gdino_checkpoint=gdino_checkpoint),
        keypoint=dict(box_head_checkpoint=None)),
    frozen_modules=('heads.mask', 'heads.keypoint'),
    init_cfg=dict(type='Pretrained', checkpoint=stage3_checkpoint))

# Table 15, Stage3-gDINO: one JSONL (the converters' outputs for GranD, GRIT and RefCOCO/+/g,
# concatenated); the sampler draws its task families in the paper's shares
data_root = 'data/vtinstruct/'
train_ann_file = 'stage3_gdino.jsonl'
train_dataloader = dict(
    sampler=dict(
        ratios=dict(_delete_=True, referring_expression=33.41, grounded_conversation=26.51,
                         open_vocabulary=40.08)))
# REC on RefCOCO val (tools/dataset_converters/refcoco2vtinstruct.py)
val_dataloader = dict(dataset=dict(data_root='data/refcoco/', ann_file='refcoco-val.jsonl'))
test_dataloader = val_dataloader
val_evaluator = [dict(type='RECMetric')]
test_evaluator = val_evaluator

# the schedule of configs/refvlm_stage3.py (5 epochs at 16 x 8) follows it
num_train_samples = 1545982
