# VT-Instruct JSONL + image root. `data_root` and the annotation files are config keys.
data_root = 'data/vtinstruct/'
train_ann_file = 'train.jsonl'
val_ann_file = 'val.jsonl'
canvas_size = 512
image_token_len = 576
region_token_len = 16
max_length = 2048
tokenizer = dict(type='pretrained', path='checkpoints/vicuna-7b-v1.5')
system = ('A chat between a curious user and an artificial intelligence assistant. The '
          "assistant gives helpful, detailed, and polite answers to the user's questions.")

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadVTInstructAnnotations'),
    dict(type='ResizePadToCanvas', size=canvas_size),
    dict(type='RenderConversation', system=system, image_token_len=image_token_len,
         region_token_len=region_token_len),
    dict(type='TokenizeConversation', tokenizer=tokenizer, max_length=max_length),
    dict(type='PackREFVLMInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadVTInstructAnnotations'),
    dict(type='ResizePadToCanvas', size=canvas_size),
    dict(type='RenderConversation', system=system, image_token_len=image_token_len,
         region_token_len=region_token_len, test_mode=True),
    dict(type='TokenizeConversation', tokenizer=tokenizer, max_length=max_length),
    dict(type='PackREFVLMInputs'),
]

train_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='VTInstructDataset', data_root=data_root, ann_file=train_ann_file,
        data_prefix=dict(img_path=''), on_bad_record='skip', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='VTInstructDataset', data_root=data_root, ann_file=val_ann_file,
        data_prefix=dict(img_path=''), test_mode=True, on_bad_record='skip',
        pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = [
    dict(type='RECMetric', tasks=['rec']),
    dict(type='RESMetric', tasks=['res']),
]
test_evaluator = val_evaluator
