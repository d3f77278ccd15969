"""Pure-torch building blocks of STViT / STViT-R (no mm* imports)."""
from .attention import (
    Attention,
    CrossAttention,
    attention,
    fused_attn,
    record_attention,
    set_fused_attn,
    use_fused_attn,
)
from .blocks import Block, CrossBlock, drop_path_rates, init_transformer_weights
from .grouping import adaptive_max_pool_tokens
from .layer_scale import DropPath, LayerScale
from .mlp import Mlp
from .recovery import RecoveryBlock
from .semantic import SemanticTokenGenerator

__all__ = [
    'Attention', 'CrossAttention', 'attention', 'fused_attn', 'record_attention',
    'set_fused_attn', 'use_fused_attn', 'Block', 'CrossBlock', 'drop_path_rates',
    'init_transformer_weights', 'adaptive_max_pool_tokens', 'DropPath', 'LayerScale', 'Mlp',
    'RecoveryBlock', 'SemanticTokenGenerator'
]
