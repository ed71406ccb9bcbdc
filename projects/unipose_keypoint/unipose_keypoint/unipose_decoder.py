"""``UniPoseDecoder``: a two-level keypoint decoder in UniPose's manner (Yang et al., "UniPose:
Detecting Any Keypoints", ICLR 2025, itself ED-Pose's decoder with text prompts), built from
MMDetection's Deformable-DETR layers.

There is no installable UniPose (IDEA-Research publishes a repository, not a package), so this
module is **ours**, assembled from ``mmdet.models.layers``; it follows UniPose's layout where
one exists and says where it departs:

- memory: the tower's pyramid levels, projected (1×1 conv + GroupNorm) and refined by a
  Deformable-DETR encoder (UniPose: 6 layers over its backbone's levels);
- instance level: each ``<REF>`` query is one instance query. Its first reference box is read
  from the encoder tokens (Deformable DETR's two-stage proposals, one per token), averaged with
  the query's softmax attention over the tokens: UniPose selects its instance queries from the
  proposals of the tokens that best match its prompt; here the prompt is the ``<REF>`` state and
  the selection is soft (ours: differentiable, and there is one instance per query). The
  instance layers (UniPose/ED-Pose: 2) refine the box;
- keypoint level: per instance, the instance query and ``K`` keypoint queries (the instance
  state plus the keypoint's prompt embedding) are decoded together, self-attention inside the
  instance only (ED-Pose's intra-instance attention). Keypoints start relative to the instance
  box and are refined in logit space layer by layer (UniPose/ED-Pose: 4 layers), the box too;
- keypoint prompts: UniPose encodes each keypoint name with CLIP's text encoder. Here a name's
  words index a hashed table of learned word embeddings, summed (ours: no text encoder in the
  head, and a name unseen in training still gets the embedding of its words);
- each keypoint reference is a small box around the point, ``keypoint_extent`` times the
  instance box (ours: ED-Pose regresses a per-keypoint box size).
"""
import math
import zlib
from typing import List, Sequence, Tuple

import torch
from mmcv.cnn import build_norm_layer
from mmdet.models.layers import (MLP, DeformableDetrTransformerDecoderLayer,
                                 DeformableDetrTransformerEncoder, SinePositionalEncoding,
                                 inverse_sigmoid)
from mmdet.models.layers.transformer import coordinate_to_encoding
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmrefvlm.models.heads.canvas import canvas_padding_masks
from mmrefvlm.models.heads.ref_decoder_head import query_self_attn_mask

# Probabilities kept away from 0 and 1 before ``inverse_sigmoid`` (points on the canvas border).
_EPS = 1e-3


def name_words(name: str) -> List[str]:
    """The lower-case words of a keypoint name (``'left_eye'``, ``'Left eye'`` → ``['left',
    'eye']``)."""
    return [word for word in ''.join(c if c.isalnum() else ' ' for c in name.lower()).split()]


class KeypointNamePrompts(nn.Module):
    """Keypoint prompts from keypoint names: the sum of the learned embeddings of a name's words,
    each word hashed (CRC-32) into one of ``num_buckets`` rows.

    Args:
        names: the ``K`` keypoint names (a data set's ``meta.json`` ``keypoint_names``).
        embed_dims: width of the embeddings.
        num_buckets: rows of the word table (the checkpoint's layout does not depend on the
            names).
    """

    def __init__(self, names: Sequence[str], embed_dims: int, num_buckets: int) -> None:
        super().__init__()
        words = [name_words(name) for name in names]
        if not names or not all(words):
            raise ValueError(f'KeypointNamePrompts: every keypoint needs a name with a word; got '
                             f'{list(names)}')
        self.names = tuple(names)
        self.words = nn.EmbeddingBag(num_buckets, embed_dims, mode='sum')
        nn.init.normal_(self.words.weight, std=1.0 / math.sqrt(2))
        buckets = [zlib.crc32(word.encode()) % num_buckets for name in words for word in name]
        offsets = [0] + [len(name) for name in words[:-1]]
        self.register_buffer('buckets', torch.tensor(buckets), persistent=False)
        self.register_buffer('offsets', torch.tensor(offsets).cumsum(0), persistent=False)

    def forward(self) -> Tensor:
        """Returns: ``[K, embed_dims]`` one prompt per keypoint name."""
        return self.words(self.buckets, self.offsets)


class UniPoseDecoder(BaseModule):
    """Encoder, instance decoder and keypoint decoder (see the module docstring).

    Every width derives from ``embed_dims`` (FFN ``ffn_ratio × embed_dims``), so one value sizes
    the module.

    Args:
        pyramid_channels: channels of the pyramid levels it reads, strides ascending.
        keypoint_names: the ``K`` keypoint names (the prompts).
        embed_dims: transformer width (UniPose: 256).
        num_heads: attention heads (8).
        num_points: deformable sampling points per head and level (4).
        ffn_ratio: FFN width over ``embed_dims`` (UniPose: 2048 / 256 = 8).
        num_encoder_layers: Deformable-DETR encoder layers over the pyramid (6; 0: none).
        num_instance_layers: instance-level decoder layers (2).
        num_keypoint_layers: keypoint-level decoder layers (4).
        num_groups: GroupNorm groups of the level projections.
        keypoint_extent: each keypoint reference box is this fraction of its instance box.
        num_name_buckets: rows of the keypoint-name word table.
    """

    def __init__(self,
                 pyramid_channels: Sequence[int],
                 keypoint_names: Sequence[str],
                 embed_dims: int = 256,
                 num_heads: int = 8,
                 num_points: int = 4,
                 ffn_ratio: int = 8,
                 num_encoder_layers: int = 6,
                 num_instance_layers: int = 2,
                 num_keypoint_layers: int = 4,
                 num_groups: int = 32,
                 keypoint_extent: float = 0.1,
                 num_name_buckets: int = 1024) -> None:
        super().__init__()
        if num_instance_layers < 1 or num_keypoint_layers < 1:
            raise ValueError(f'UniPoseDecoder: num_instance_layers={num_instance_layers} and '
                             f'num_keypoint_layers={num_keypoint_layers} must both be >= 1')
        dims, levels = embed_dims, len(pyramid_channels)
        self.embed_dims, self.num_levels = dims, levels
        self.num_keypoints = len(keypoint_names)
        self.keypoint_extent = keypoint_extent
        layer_cfg = dict(
            self_attn_cfg=dict(embed_dims=dims, num_heads=num_heads, dropout=0.0,
                               batch_first=True),
            cross_attn_cfg=dict(embed_dims=dims, num_heads=num_heads, num_levels=levels,
                                num_points=num_points, dropout=0.0, batch_first=True),
            ffn_cfg=dict(embed_dims=dims, feedforward_channels=ffn_ratio * dims, ffn_drop=0.0))
        # memory
        self.input_proj = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, dims, 1), nn.GroupNorm(num_groups, dims))
            for channels in pyramid_channels)
        self.level_embed = nn.Parameter(torch.randn(levels, dims) * 0.02)
        self.positional_encoding = SinePositionalEncoding(num_feats=dims // 2, normalize=True,
                                                          offset=-0.5)
        self.encoder = DeformableDetrTransformerEncoder(
            num_layers=num_encoder_layers,
            layer_cfg=dict(self_attn_cfg=layer_cfg['cross_attn_cfg'],
                           ffn_cfg=layer_cfg['ffn_cfg'])) if num_encoder_layers else None
        # instance level: query-conditioned proposals, then box refinement
        self.memory_trans = nn.Sequential(nn.Linear(dims, dims),
                                          build_norm_layer(dict(type='LN'), dims)[1])
        self.proposal_branch = MLP(dims, dims, 4, 3)
        self.proposal_key = nn.Linear(dims, dims)
        self.instance_layers = nn.ModuleList(
            DeformableDetrTransformerDecoderLayer(**layer_cfg)
            for _ in range(num_instance_layers))
        self.instance_box_branches = nn.ModuleList(
            MLP(dims, dims, 4, 3) for _ in range(num_instance_layers))
        self.instance_ref_point_head = MLP(2 * dims, dims, dims, 2)
        # keypoint level
        self.keypoint_prompts = KeypointNamePrompts(keypoint_names, dims, num_name_buckets)
        self.pose_init_branch = MLP(dims, dims, 2, 3)
        self.keypoint_layers = nn.ModuleList(
            DeformableDetrTransformerDecoderLayer(**layer_cfg)
            for _ in range(num_keypoint_layers))
        self.keypoint_box_branches = nn.ModuleList(
            MLP(dims, dims, 4, 3) for _ in range(num_keypoint_layers))
        self.keypoint_branches = nn.ModuleList(
            MLP(dims, dims, 2, 3) for _ in range(num_keypoint_layers))
        self.visibility_branches = nn.ModuleList(
            nn.Linear(dims, 1) for _ in range(num_keypoint_layers))
        self.keypoint_ref_point_head = MLP(2 * dims, dims, dims, 2)
        # refinements start at their references (Deformable DETR's zeroed regression layers)
        for branch in (self.proposal_branch, *self.instance_box_branches,
                       *self.keypoint_box_branches, *self.keypoint_branches):
            nn.init.zeros_(branch.layers[-1].weight)
            nn.init.zeros_(branch.layers[-1].bias)

    # --------------------------------------------------------------------------------- memory
    def encode(self, pyramid: Sequence[Tensor],
               batch_img_metas: Sequence[dict]) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """The encoded memory of the pyramid.

        Args:
            pyramid: ``num_levels`` maps ``[B, C_i, h_i, w_i]`` over the canvas.
            batch_img_metas: per sample, with ``img_shape`` and ``pad_shape``.

        Returns:
            tuple: ``memory [B, N, D]``, ``padding [B, N]`` bool (True on canvas padding),
            ``spatial_shapes [L, 2]`` long ``(h, w)`` and ``level_start_index [L]``.
        """
        if len(pyramid) != self.num_levels:
            raise ValueError(f'UniPoseDecoder: {len(pyramid)} pyramid levels given, built for '
                             f'{self.num_levels}')
        sizes = [tuple(level.shape[-2:]) for level in pyramid]
        masks = canvas_padding_masks(batch_img_metas, sizes, pyramid[0].device)
        tokens, pos, padding = [], [], []
        for i, (level, mask) in enumerate(zip(pyramid, masks)):
            # padding zeroed: what lies there never reaches the GroupNorm statistics
            level = level.masked_fill(mask[:, None], 0)
            tokens.append(self.input_proj[i](level).flatten(2).transpose(1, 2))
            pos.append(self.positional_encoding(mask).flatten(2).transpose(1, 2)
                       + self.level_embed[i])
            padding.append(mask.flatten(1))
        memory, memory_pos, padding = (torch.cat(x, 1) for x in (tokens, pos, padding))
        spatial_shapes = torch.tensor(sizes, dtype=torch.long, device=memory.device)
        level_start_index = torch.cat([spatial_shapes.new_zeros(1),
                                       spatial_shapes.prod(1).cumsum(0)[:-1]])
        if self.encoder is None:
            return memory, padding, spatial_shapes, level_start_index
        # reference points are canvas-normalised everywhere: valid ratios of 1
        ones = memory.new_ones(len(memory), self.num_levels, 2)
        memory = self.encoder(query=memory, query_pos=memory_pos.to(memory.dtype),
                              key_padding_mask=padding, spatial_shapes=spatial_shapes,
                              level_start_index=level_start_index, valid_ratios=ones)
        return memory, padding, spatial_shapes, level_start_index

    def token_proposals(self, memory: Tensor, padding: Tensor,
                        spatial_shapes: Tensor) -> Tuple[Tensor, Tensor]:
        """Deformable DETR's two-stage proposals: one box per token, a delta (in logit space)
        on the token's centre and a level-sized square (``0.05 × 2^level``).

        Returns:
            tuple: ``keys [B, N, D]`` (the transformed tokens) and ``proposals [B, N, 4]``
            cxcywh normalised by the canvas.
        """
        anchors = []
        for level, (h, w) in enumerate(spatial_shapes.tolist()):
            y, x = torch.meshgrid(torch.arange(h, device=memory.device),
                                  torch.arange(w, device=memory.device), indexing='ij')
            centres = torch.stack([(x.flatten() + 0.5) / w, (y.flatten() + 0.5) / h], -1)
            anchors.append(torch.cat([centres, torch.full_like(centres, 0.05 * 2**level)], -1))
        anchors = torch.cat(anchors).clamp(_EPS, 1 - _EPS).to(memory.dtype)
        keys = self.memory_trans(memory.masked_fill(padding[..., None], 0))
        proposals = (inverse_sigmoid(anchors) + self.proposal_branch(keys)).sigmoid()
        return keys, proposals

    # ------------------------------------------------------------------------------ decoding
    def forward(self, query: Tensor, query_mask: Tensor, pyramid: Sequence[Tensor],
                batch_img_metas: Sequence[dict]) -> Tuple[Tensor, Tensor]:
        """Decode the instance queries into boxes, then into keypoints.

        Args:
            query: ``[B, Q, D]`` instance queries (the projected ``<REF>`` states).
            query_mask: ``[B, Q]`` bool, True on valid queries (padded ones never change a
                valid one's outputs).
            pyramid: ``num_levels`` maps ``[B, C_i, h_i, w_i]``.
            batch_img_metas: per sample image meta.

        Returns:
            tuple: keypoint-level outputs ``[num_keypoint_layers, B, Q, 4 + 3K]`` (box cxcywh,
            then ``K`` keypoints ``x0, y0, x1, …``, both normalised by the canvas, then ``K``
            visibility logits) and the instance-level boxes ``[num_instance_layers, B, Q, 4]``
            cxcywh normalised.
        """
        memory, padding, shapes, starts = self.encode(pyramid, batch_img_metas)
        value = dict(value=memory, key_padding_mask=padding, spatial_shapes=shapes,
                     level_start_index=starts)
        keys, proposals = self.token_proposals(memory, padding, shapes)
        logits = torch.einsum('bqd,bnd->bqn', query, self.proposal_key(keys)) / math.sqrt(
            self.embed_dims)
        weights = logits.float().masked_fill(padding[:, None], float('-inf')).softmax(-1)
        reference = torch.einsum('bqn,bnc->bqc', weights.to(proposals.dtype), proposals)
        state, instance_boxes = self.decode_instances(query, query_mask, reference, value)
        return self.decode_keypoints(state, query_mask, instance_boxes[-1], value), instance_boxes

    def decoder_layer(self, layer: nn.Module, ref_point_head: nn.Module, state: Tensor,
                      reference: Tensor, self_attn_mask: Tensor, value: dict) -> Tensor:
        """One Deformable-DETR decoder layer at the (detached) reference boxes ``[B, N, 4]``,
        their sine encoding as the query positions (DAB/DINO)."""
        reference = reference.detach()
        query_pos = ref_point_head(
            coordinate_to_encoding(reference.float(), num_feats=self.embed_dims // 2))
        return layer(state, query_pos=query_pos.to(state.dtype), self_attn_mask=self_attn_mask,
                     reference_points=reference[:, :, None].expand(-1, -1, self.num_levels, -1),
                     **value)

    def decode_instances(self, query: Tensor, query_mask: Tensor, reference: Tensor,
                         value: dict) -> Tuple[Tensor, Tensor]:
        """Instance layers: each refines its reference box (the first one keeps the gradient
        of the proposals' reading).

        Returns:
            tuple: the last states ``[B, Q, D]`` and the boxes ``[layers, B, Q, 4]``.
        """
        mask = query_self_attn_mask(query_mask, self.instance_layers[0].self_attn.num_heads)
        state, boxes = query, []
        for layer, box_branch in zip(self.instance_layers, self.instance_box_branches):
            state = self.decoder_layer(layer, self.instance_ref_point_head, state, reference,
                                       mask, value)
            reference = (inverse_sigmoid(reference.clamp(_EPS, 1 - _EPS))
                         + box_branch(state)).sigmoid()
            boxes.append(reference)
        return state, torch.stack(boxes)

    def decode_keypoints(self, state: Tensor, query_mask: Tensor, box: Tensor,
                         value: dict) -> Tensor:
        """Keypoint layers over ``1 + K`` queries per instance (see :meth:`forward`)."""
        batch, num_queries, dims = state.shape
        num_kpt = self.num_keypoints
        keypoint_state = state[:, :, None] + self.keypoint_prompts().to(state.dtype)
        # keypoints start relative to the instance box, as RefKeypointHead's
        points = (box[..., None, :2] + self.pose_init_branch(keypoint_state).tanh()
                  * box[..., None, 2:]).clamp(_EPS, 1 - _EPS)
        tokens = torch.cat([state[:, :, None], keypoint_state], 2).flatten(1, 2)
        instance = torch.arange(num_queries, device=state.device).repeat_interleave(1 + num_kpt)
        attn_mask = instance[:, None] != instance[None]  # True: blocked (other instances)
        outputs = []
        for i, layer in enumerate(self.keypoint_layers):
            reference = torch.cat([box[..., None, :], torch.cat(
                [points, self.keypoint_extent * box[..., None, 2:].expand_as(points)], -1)], 2)
            tokens = self.decoder_layer(layer, self.keypoint_ref_point_head, tokens,
                                        reference.flatten(1, 2), attn_mask, value)
            per_instance = tokens.unflatten(1, (num_queries, 1 + num_kpt))
            box = (inverse_sigmoid(box.clamp(_EPS, 1 - _EPS))
                   + self.keypoint_box_branches[i](per_instance[:, :, 0])).sigmoid()
            points = (inverse_sigmoid(points.clamp(_EPS, 1 - _EPS))
                      + self.keypoint_branches[i](per_instance[:, :, 1:])).sigmoid()
            visibility = self.visibility_branches[i](per_instance[:, :, 1:])[..., 0]
            outputs.append(torch.cat([box, points.flatten(-2), visibility], -1))
        return torch.stack(outputs)
