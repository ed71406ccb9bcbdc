# Evaluate the stage-2 model on POPE random (accuracy, precision, recall, F1, yes-ratio).
# Data: VT-Instruct JSONL written by tools/dataset_converters/pope2vtinstruct.py
# (docs/converters.md). Run:
#   python tools/test.py configs/refvlm/benchmarks/refvlm_vicuna7b_clipl-convnextl_stage2_pope-random.py CKPT
_base_ = '../../refvlm_stage2.py'

data_root = 'data/pope/'
test_dataloader = dict(dataset=dict(ann_file='pope-random.jsonl'))
val_dataloader = test_dataloader
test_evaluator = [dict(type='POPEMetric')]
val_evaluator = test_evaluator
