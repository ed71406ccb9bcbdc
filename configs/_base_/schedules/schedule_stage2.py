# Paper App. D (stage 2): warm-up ratio 0.03 then cosine. The optimizer (AdamW, lr 2e-6, weight
# decay 0), max norm 1 and bf16 belong to the strategy: strategy_deepspeed_zero2.py. What derives
# from `max_iters` reads it through '${...}' references, so a child config or
# --cfg-options max_iters=N moves the loop, the warm-up and the cosine's end.
max_iters = 60000
warmup_iters = '${max(1, int(0.03 * max_iters))}'  # at least 1: a short run still warms up
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end='${warmup_iters}'),
    dict(type='CosineAnnealingLR', by_epoch=False, begin='${warmup_iters}', end='${max_iters}',
         eta_min=0.0)
]
train_cfg = dict(type='REFVLMTrainLoop', max_iters='${max_iters}', val_interval='${max_iters}')
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='REFVLMTestLoop')
