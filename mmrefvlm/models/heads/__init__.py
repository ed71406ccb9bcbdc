from .box_head import RefBoxHead
from .depth_head import RefDepthHead
from .keypoint_head import RefKeypointHead
from .locator import LocatedBoxPrior, ReferenceLocator
from .mask_head import RefMaskHead
from .pyramid_fusion import PyramidFusion
from .ref_decoder_head import RefDecoderHead, RefQueryDecoder, query_self_attn_mask
from .unit_head import RefUnitHead, has_target, select_targets

__all__ = ['RefBoxHead', 'RefDepthHead', 'RefKeypointHead', 'RefMaskHead', 'PyramidFusion',
           'RefDecoderHead', 'RefQueryDecoder', 'RefUnitHead', 'ReferenceLocator',
           'LocatedBoxPrior', 'query_self_attn_mask', 'select_targets', 'has_target']
