# configs/refvlm_stage2.py under DeepSpeed ZeRO-3 (weights, gradients and optimizer states
# partitioned): the base for larger LMs (set `llm_path`) or smaller GPUs. The last
# checkpoint's weights are gathered by FinalWeightsHook (consolidate_checkpoint.py), so the 16-bit
# copy need not be gathered on every save.
_base_ = ['../refvlm_stage2.py']
strategy = dict(
    zero_optimization=dict(
        _delete_=True,
        stage=3,
        overlap_comm=True,
        contiguous_gradients=True,
        reduce_bucket_size=int(5e8),
        stage3_prefetch_bucket_size=int(5e8),
        stage3_param_persistence_threshold=int(1e6),
        stage3_gather_16bit_weights_on_model_save=False))
