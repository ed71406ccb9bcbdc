# Evaluate the stage-2 model on COCO val2017 freeform OVD/OVS (mAP-similarity, paper App. E).
# Data: VT-Instruct JSONL written by tools/dataset_converters/coco2vtinstruct.py
# (docs/converters.md). Run:
#   python tools/test.py configs/refvlm/benchmarks/refvlm_vicuna7b_clipl-convnextl_stage2_coco-fovd-val2017.py CKPT
_base_ = '../../refvlm_stage2.py'

data_root = 'data/coco/'
test_dataloader = dict(dataset=dict(ann_file='coco-fovd-val2017.jsonl'))
val_dataloader = test_dataloader
test_evaluator = [dict(type='FOVDMetric', text_encoder={{_base_.clip_text_encoder}})]
val_evaluator = test_evaluator
