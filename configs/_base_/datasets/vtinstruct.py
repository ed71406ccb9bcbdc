# VT-Instruct JSONL + image root. `data_root` and the annotation files are config keys; the
# pipelines are the model's (its base's `train_pipeline` / `test_pipeline`, set by the stage
# configs).
data_root = 'data/vtinstruct/'
train_ann_file = 'train.jsonl'
val_ann_file = 'val.jsonl'
train_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='VTInstructDataset', data_root=data_root, ann_file=train_ann_file,
        data_prefix=dict(img_path=''), on_bad_record='skip', pipeline=[]))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='VTInstructDataset', data_root=data_root, ann_file=val_ann_file,
        data_prefix=dict(img_path=''), test_mode=True, on_bad_record='skip',
        pipeline=[]))
test_dataloader = val_dataloader

val_evaluator = [
    dict(type='RECMetric', tasks=['rec']),
    dict(type='RESMetric', tasks=['res']),
]
test_evaluator = val_evaluator
