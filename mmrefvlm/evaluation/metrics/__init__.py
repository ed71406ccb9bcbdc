"""Every metric of the paper (DESIGN §7), each a ``BaseMetric`` in ``mmrefvlm.registry.METRICS``.

Each metric keeps only the samples of its ``tasks`` and reports ``{task}/{name}`` keys, so one
evaluator list can hold them all. Values are on the scale of the tool that computes them:
fractions in [0, 1] for accuracies, IoUs and COCOeval APs, pycocoevalcap's scale for caption
scores (CIDEr ≈ 0–10). No metric writes a file.
"""
from .caption_metric import CaptionMetric
from .depth_metric import DepthMetric
from .fovd_metric import FOVDMetric, OVDMetric
from .gcg_metric import GCGMetric
from .interactive_grounding_metric import InteractiveGroundingMetric
from .keypoint_metric import KeypointMetric
from .pope_metric import POPEMetric
from .rec_metric import RECMetric
from .res_metric import RESMetric
from .text_encoders import build_text_encoder
from .vqa_metric import VQAMetric

__all__ = [
    'CaptionMetric', 'DepthMetric', 'FOVDMetric', 'GCGMetric', 'InteractiveGroundingMetric',
    'KeypointMetric', 'OVDMetric', 'POPEMetric', 'RECMetric', 'RESMetric', 'VQAMetric',
    'build_text_encoder'
]
