# Stage 1 (paper App. D): only the projector is trained (LLM and towers frozen), on caption,
# VQA and referring data whose boxes are written as numbers in the text (no unit heads).
_base_ = './refvlm_stage2.py'
model = dict(neck=dict(freeze_lm=True, gradient_checkpointing=False), heads=dict(_delete_=True))
optim_wrapper = dict(optimizer=dict(lr=1e-5))
load_from = None
