# Evaluate the stage-2 model on COCO-Interactive val (IG mIoU/cIoU per prompt type).
# Data: VT-Instruct JSONL written by tools/dataset_converters/coco_interactive2vtinstruct.py
# (docs/converters.md). Run:
#   python tools/test.py configs/refvlm/benchmarks/refvlm_vicuna7b_clipl-convnextl_stage2_coco-interactive-val.py CKPT
_base_ = '../../refvlm_stage2.py'

data_root = 'data/coco_interactive/'
test_dataloader = dict(dataset=dict(ann_file='coco-interactive-val.jsonl'))
val_dataloader = test_dataloader
test_evaluator = [dict(type='InteractiveGroundingMetric')]
val_evaluator = test_evaluator
