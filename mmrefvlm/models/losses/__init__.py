from .oks_loss import KeypointOKSCost, OKSLoss, keypoint_oks
from .silog_loss import SILogLoss

__all__ = ['KeypointOKSCost', 'OKSLoss', 'keypoint_oks', 'SILogLoss']
