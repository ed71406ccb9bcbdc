# Evaluate the stage-2 model on RefCOCO testB.
# Data: VT-Instruct JSONL written by tools/dataset_converters/refcoco2vtinstruct.py
# (docs/converters.md). Run:
#   python tools/test.py configs/refvlm/benchmarks/refvlm_vicuna7b_clipl-convnextl_stage2_refcoco-testB.py CKPT
_base_ = '../../refvlm_stage2.py'

data_root = 'data/refcoco/'
test_dataloader = dict(dataset=dict(ann_file='refcoco-testB.jsonl'))
val_dataloader = test_dataloader
test_evaluator = [dict(type='RECMetric'), dict(type='RESMetric')]
val_evaluator = test_evaluator
