# Evaluate the stage-2 model on Flickr30k-Entities test (GCG-box: AP50, mIoU, recall, CIDEr, METEOR).
# Data: VT-Instruct JSONL written by tools/dataset_converters/flickr30k2vtinstruct.py
# (docs/converters.md). Run:
#   python tools/test.py configs/refvlm/benchmarks/refvlm_vicuna7b_clipl-convnextl_stage2_flickr30k-test.py CKPT
_base_ = '../../refvlm_stage2.py'

data_root = 'data/flickr30k/'
test_dataloader = dict(dataset=dict(ann_file='flickr30k-test.jsonl'))
val_dataloader = test_dataloader
test_evaluator = [dict(type='GCGMetric', text_encoder={{_base_.clip_text_encoder}})]
val_evaluator = test_evaluator
