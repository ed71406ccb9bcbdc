"""A UniPose-style keypoint decoder as REF-VLM's keypoint unit
(``custom_imports=['projects.unipose_keypoint.unipose_keypoint']``)."""
from .checkpoint import load_head_state
from .unipose_ref_keypoint_head import UNIPOSE_KEYPOINT_DECODER, UniPoseRefKeypointHead

__all__ = ['UniPoseRefKeypointHead', 'UNIPOSE_KEYPOINT_DECODER', 'load_head_state']
