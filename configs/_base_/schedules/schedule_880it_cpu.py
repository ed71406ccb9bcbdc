# A schedule that fits the 20-minute main job on two CPU cores: 880 iterations, AdamW at 1e-3,
# linear warm-up then cosine, one checkpoint at the end.
_base_ = ['./schedule_stage2.py']

max_iters = 880
# 100 iterations, shorter in a short run (--cfg-options max_iters=4 trains 1 + 3)
warmup_iters = '${max(1, min(100, max_iters // 4))}'
optim_wrapper = dict(
    type='OptimWrapper',
    # fused: one kernel for all tensors
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.98), weight_decay=0.0, fused=True),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end='${warmup_iters}'),
    dict(type='CosineAnnealingLR', by_epoch=False, begin='${warmup_iters}', end='${max_iters}',
         eta_min=1e-5)
]
val_cfg = None  # the main job evaluates once, with tools/test.py, after training
