from .box_head import RefBoxHead
from .mask_head import RefMaskHead
from .pyramid_fusion import PyramidFusion
from .ref_decoder_head import RefDecoderHead, query_self_attn_mask

__all__ = ['RefBoxHead', 'RefMaskHead', 'PyramidFusion', 'RefDecoderHead',
           'query_self_attn_mask']
