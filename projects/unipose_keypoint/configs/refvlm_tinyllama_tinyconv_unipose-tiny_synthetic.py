# The tiny config (generated shape scenes, two CPU cores) with its keypoint head swapped for a
# UniPose-style decoder (Grounding DINO instance stage + deformable keypoint stage) of the tiny
# config's size, on the synthetic "house" keypoints. No weights at this size exist: the frozen
# Swin backbone is randomly initialised, so this checks the plumbing, not UniPose's quality.
#   python tools/train.py projects/unipose_keypoint/configs/refvlm_tinyllama_tinyconv_unipose-tiny_synthetic.py
_base_ = '../../../configs/refvlm/refvlm_tinyllama_tinyconv_stage2_synthetic.py'
custom_imports = dict(imports=['mmrefvlm', 'projects.unipose_keypoint.unipose_keypoint'],
                      allow_failed_imports=False)

attention = dict(embed_dims=256, num_heads=4, dropout=0.0)
model = dict(
    heads=dict(
        keypoint=dict(
            _delete_=True, type='UniPoseRefKeypointHead',
            # the synthetic "house" family: 5 named keypoints (data/synthetic/meta.json)
            num_keypoints=5, keypoint_sigmas=[0.025] * 5,
            backbone=dict(
                type='SwinTransformer', embed_dims=16, depths=[1, 1, 1, 1],
                num_heads=[1, 1, 2, 2], window_size=4, out_indices=(1, 2, 3),
                drop_path_rate=0.0, convert_weights=False),
            neck=dict(type='ChannelMapper', in_channels=[32, 64, 128], kernel_size=1,
                      out_channels=256, act_cfg=None, bias=True,
                      norm_cfg=dict(type='GN', num_groups=32), num_outs=4),
            encoder=dict(
                num_layers=1,
                layer_cfg=dict(self_attn_cfg=dict(embed_dims=256, num_levels=4, dropout=0.0),
                               ffn_cfg=dict(embed_dims=256, feedforward_channels=256)),
                text_layer_cfg=dict(self_attn_cfg=attention,
                                    ffn_cfg=dict(embed_dims=256, feedforward_channels=256)),
                fusion_layer_cfg=dict(v_dim=256, l_dim=256, embed_dim=256, num_heads=4,
                                      init_values=1e-4)),
            decoder=dict(
                num_layers=2, return_intermediate=True, post_norm_cfg=None,
                layer_cfg=dict(self_attn_cfg=attention, cross_attn_text_cfg=attention,
                               cross_attn_cfg=dict(embed_dims=256, num_heads=4, dropout=0.0),
                               ffn_cfg=dict(embed_dims=256, feedforward_channels=256))),
            keypoint_decoder=dict(
                num_layers=2,
                layer_cfg=dict(self_attn_cfg=attention,
                               cross_attn_cfg=dict(embed_dims=256, num_heads=4, num_levels=4,
                                                   dropout=0.0, batch_first=True),
                               ffn_cfg=dict(embed_dims=256, feedforward_channels=256))),
            image_size={{_base_.canvas_size}},
            image_mean={{_base_.model.data_preprocessor.mean}},
            image_std={{_base_.model.data_preprocessor.std}})))
