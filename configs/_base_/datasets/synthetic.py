# The generated shape scenes (`tools/dataset_converters/generate_synthetic.py`): every task, exact
# ground truth, small batches for two CPU cores. Evaluated once, with tools/test.py, after
# training.
_base_ = ['./vtinstruct.py']

data_root = 'data/synthetic/'
train_dataloader = dict(batch_size=8, num_workers=1, dataset=dict(data_root=data_root))
test_dataloader = dict(batch_size=32, num_workers=1, dataset=dict(data_root=data_root))
val_dataloader = None
val_evaluator = None
test_evaluator = [
    dict(type='RECMetric'),
    dict(type='RESMetric'),
    dict(type='InteractiveGroundingMetric'),
    dict(type='CaptionMetric'),
    dict(type='VQAMetric'),
    dict(type='POPEMetric'),
    dict(type='GCGMetric', text_encoder=dict(type='minilm')),
    dict(type='OVDMetric'),
    dict(type='FOVDMetric', text_encoder=dict(type='minilm')),
    dict(type='KeypointMetric', tasks=['keypoint', 'ig_keypoint']),
    dict(type='DepthMetric'),
]
