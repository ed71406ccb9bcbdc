# Evaluate the stage-2 model on GranD-f GCG val (GCG-mask).
# Data: VT-Instruct JSONL written by tools/dataset_converters/glamm_gcg2vtinstruct.py
# (docs/converters.md). Run:
#   python tools/test.py configs/refvlm/benchmarks/refvlm_vicuna7b_clipl-convnextl_stage2_grandf-gcg-val.py CKPT
_base_ = '../../refvlm_stage2.py'

data_root = 'data/grandf/'
test_dataloader = dict(dataset=dict(ann_file='grandf-gcg-val.jsonl'))
val_dataloader = test_dataloader
test_evaluator = [dict(type='GCGMetric', text_encoder={{_base_.clip_text_encoder}})]
val_evaluator = test_evaluator
