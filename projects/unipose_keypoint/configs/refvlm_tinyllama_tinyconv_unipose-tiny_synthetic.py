# The tiny config (generated shape scenes, two CPU cores) with its keypoint head swapped for the
# UniPose-style two-level decoder (projects/unipose_keypoint: ours, from MMDetection's
# Deformable-DETR layers) at the tiny config's size, randomly initialised: this checks the
# plumbing (training, evaluation, every metric), not UniPose's quality.
#   python tools/train.py projects/unipose_keypoint/configs/refvlm_tinyllama_tinyconv_unipose-tiny_synthetic.py
_base_ = '../../../configs/refvlm/refvlm_tinyllama_tinyconv_stage2_synthetic.py'
custom_imports = dict(imports=['mmrefvlm', 'projects.unipose_keypoint.unipose_keypoint'],
                      allow_failed_imports=False)

model = dict(
    heads=dict(
        keypoint=dict(
            _delete_=True, type='UniPoseRefKeypointHead',
            # the "house" family of data/synthetic/meta.json (keypoint_names)
            keypoint_names=['roof apex', 'left eave', 'right eave', 'bottom left',
                            'bottom right'],
            keypoint_sigmas={{_base_.model.heads.keypoint.keypoint_sigmas}},
            # every width derives from embed_dims
            decoder=dict(embed_dims=64, num_heads=4, num_points=2, ffn_ratio=2,
                         num_encoder_layers=1, num_instance_layers=1, num_keypoint_layers=2,
                         num_groups=8, num_name_buckets=64),
            memory_levels={{_base_.model.heads.keypoint.memory_levels}})))
