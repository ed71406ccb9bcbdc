from .box_head import RefBoxHead
from .depth_head import RefDepthHead
from .keypoint_head import RefKeypointHead
from .mask_head import RefMaskHead
from .pyramid_fusion import PyramidFusion
from .ref_decoder_head import RefDecoderHead, query_self_attn_mask

__all__ = ['RefBoxHead', 'RefDepthHead', 'RefKeypointHead', 'RefMaskHead', 'PyramidFusion',
           'RefDecoderHead', 'query_self_attn_mask']
