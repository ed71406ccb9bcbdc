"""A UniPose-style keypoint decoder as REF-VLM's keypoint unit
(``custom_imports=['projects.unipose_keypoint.unipose_keypoint']``)."""
from .checkpoint import load_unipose_state, unipose_state_dict
from .unipose_decoder import KeypointNamePrompts, UniPoseDecoder
from .unipose_ref_keypoint_head import UniPoseRefKeypointHead

__all__ = ['UniPoseRefKeypointHead', 'UniPoseDecoder', 'KeypointNamePrompts',
           'load_unipose_state', 'unipose_state_dict']
