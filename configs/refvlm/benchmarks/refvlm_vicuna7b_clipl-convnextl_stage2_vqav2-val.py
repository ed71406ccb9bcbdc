# Evaluate the stage-2 model on VQAv2 val (soft accuracy).
# Data: VT-Instruct JSONL written by tools/dataset_converters/vqav22vtinstruct.py
# (docs/converters.md). Run:
#   python tools/test.py configs/refvlm/benchmarks/refvlm_vicuna7b_clipl-convnextl_stage2_vqav2-val.py CKPT
_base_ = '../../refvlm_stage2.py'

data_root = 'data/vqav2/'
test_dataloader = dict(dataset=dict(ann_file='vqav2-val.jsonl'))
val_dataloader = test_dataloader
test_evaluator = [dict(type='VQAMetric')]
val_evaluator = test_evaluator
