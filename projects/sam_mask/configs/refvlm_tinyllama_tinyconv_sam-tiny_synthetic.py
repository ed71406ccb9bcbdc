# The tiny config (generated shape scenes, two CPU cores) with its mask head swapped for SAM's
# prompt encoder and mask decoder over a SAM image encoder of the tiny config's size. No SAM
# weights at this size exist: the frozen image encoder is randomly initialised, so this checks
# the plumbing (training, evaluation, every metric), not SAM's quality.
#   python tools/train.py projects/sam_mask/configs/refvlm_tinyllama_tinyconv_sam-tiny_synthetic.py
_base_ = '../../../configs/refvlm/refvlm_tinyllama_tinyconv_stage2_synthetic.py'
custom_imports = dict(imports=['mmrefvlm', 'projects.sam_mask.sam_mask'],
                      allow_failed_imports=False)

sam_dims = 64
model = dict(
    heads=dict(
        mask=dict(
            _delete_=True, type='SAMRefMaskHead',
            # a 16 x 16 embedding of the 128-px canvas, 64 x 64 masks
            image_encoder=dict(img_size={{_base_.canvas_size}}, patch_size=8, embed_dim=sam_dims,
                               depth=2, num_heads=2, global_attn_indexes=(1, ), window_size=4),
            prompt_embed_dims=sam_dims,
            mask_decoder=dict(transformer=dict(depth=2, mlp_dim=2 * sam_dims, num_heads=4),
                              num_multimask_outputs=3, iou_head_depth=3,
                              iou_head_hidden_dim=sam_dims),
            image_mean={{_base_.model.data_preprocessor.mean}},
            image_std={{_base_.model.data_preprocessor.std}},
            # the tiny config's mask losses (trained from scratch, focal leaves every pixel
            # below 0.5)
            assigner={{_base_.model.heads.mask.assigner}},
            loss_mask={{_base_.model.heads.mask.loss_mask}},
            loss_dice={{_base_.model.heads.mask.loss_dice}})))
