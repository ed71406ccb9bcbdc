# Evaluate the stage-3 model on COCO person keypoints val2017 (OKS AP).
# Data: VT-Instruct JSONL written by tools/dataset_converters/cocokpt2vtinstruct.py
# (docs/converters.md). Run:
#   python tools/test.py configs/refvlm/benchmarks/refvlm_vicuna7b_clipl-convnextl_stage3_coco-keypoints-val2017.py CKPT
_base_ = '../../refvlm_stage3.py'

data_root = 'data/coco_keypoints/'
test_dataloader = dict(dataset=dict(ann_file='person_keypoints_val2017.jsonl'))
val_dataloader = test_dataloader
test_evaluator = [dict(type='KeypointMetric', tasks=['keypoint', 'ig_keypoint'])]
val_evaluator = test_evaluator
