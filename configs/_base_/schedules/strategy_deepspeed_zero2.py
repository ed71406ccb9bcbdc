# DeepSpeed ZeRO-2 under MMEngine's FlexibleRunner (tools/launch.py picks FlexibleRunner whenever
# a config sets `strategy`). Paper App. D: bf16, max norm 1, AdamW with weight decay 0; the
# official code trains with ZeRO-2. DeepSpeed's bf16 mode computes in bf16 and keeps fp32 master
# weights and Adam moments, partitioned over the GPUs, so that steps of lr 2e-6 are not rounded
# away as they are on bf16 weights. Activation checkpointing is the LM's own (HF, one segment per
# decoder layer): `model.neck.gradient_checkpointing`. The towers cast their inputs to their
# weights' dtype, so no input is cast here (`inputs_to_half` would also cast the token ids).
strategy = dict(
    type='DeepSpeedStrategy',
    bf16=dict(enabled=True),
    gradient_clipping=1.0,
    zero_optimization=dict(
        stage=2,
        allgather_partitions=True,
        allgather_bucket_size=int(5e8),
        reduce_scatter=True,
        reduce_bucket_size=int(5e8),
        overlap_comm=True,
        contiguous_gradients=True),
    train_micro_batch_size_per_gpu=16)
optim_wrapper = dict(
    type='DeepSpeedOptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-6, betas=(0.9, 0.999), weight_decay=0.0))
