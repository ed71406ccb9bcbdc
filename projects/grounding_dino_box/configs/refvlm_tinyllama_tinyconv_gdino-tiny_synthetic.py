# The tiny config (generated shape scenes, two CPU cores) with its box head swapped for Grounding
# DINO's text-image encoder and decoder, at the tiny config's size. No Grounding DINO weights at
# this size exist: it is randomly initialised, so this checks the plumbing (training, evaluation,
# every metric), not Grounding DINO's quality.
#   python tools/train.py projects/grounding_dino_box/configs/refvlm_tinyllama_tinyconv_gdino-tiny_synthetic.py
_base_ = '../../../configs/refvlm/refvlm_tinyllama_tinyconv_stage2_synthetic.py'
custom_imports = dict(imports=['mmrefvlm', 'projects.grounding_dino_box.grounding_dino_box'],
                      allow_failed_imports=False)

model = dict(
    heads=dict(
        box=dict(
            _delete_=True, type='GroundingDINORefBoxHead',
            # the one width of the transformer, neck and branches (the test suite shrinks it)
            embed_dims=64,
            # a 2-block Swin trained with the rest (no weights to keep): strides 8-64 of the
            # canvas
            backbone=dict(type='SwinTransformer', embed_dims=16, depths=[1, 1, 1, 1],
                          num_heads=[1, 2, 2, 4], window_size=4, out_indices=(1, 2, 3),
                          drop_path_rate=0.0, convert_weights=False),
            freeze_backbone=False,
            neck=dict(type='ChannelMapper', kernel_size=1, act_cfg=None, bias=True,
                      norm_cfg=dict(type='GN', num_groups=8), num_outs=4),
            encoder=dict(
                num_layers=2,
                layer_cfg=dict(self_attn_cfg=dict(num_heads=4, num_points=2),
                               ffn_cfg=dict(feedforward_channels=128)),
                text_layer_cfg=dict(self_attn_cfg=dict(num_heads=4),
                                    ffn_cfg=dict(feedforward_channels=128)),
                fusion_layer_cfg=dict(embed_dim=64, num_heads=4, init_values=1e-4)),
            decoder=dict(
                num_layers=2, return_intermediate=True,
                layer_cfg=dict(self_attn_cfg=dict(num_heads=4),
                               cross_attn_text_cfg=dict(num_heads=4),
                               cross_attn_cfg=dict(num_heads=4, num_points=2),
                               ffn_cfg=dict(feedforward_channels=128)),
                post_norm_cfg=None),
            image_mean={{_base_.model.data_preprocessor.mean}},
            image_std={{_base_.model.data_preprocessor.std}})))
