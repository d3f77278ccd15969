"""A test oracle: the backbone of the authors' COCO detectors, computed step by step as the
detection fork (changsn/STViT-R-Object-Detection, mmdet 2.11) computes it, on a state dict in
the fork's own names (``layers.2.blocks.1.attn.q.weight``, ...).

Written for these tests from reading the fork's ``swin_transformer.py`` and ``layers.py``: the
same sequence of pads, unfolds, masks and softmaxes, none of our library's code, so that our
``STViTSwin(preset='official-det')`` is checked against an independent account of the fork.
"""
import math
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

WINDOW, POOL, K1, K2, KR = 7, 3, 14, 21, 27
SHIFT_MASK, PAD_MASK = -100.0, -1000.0


class Weights:
    """Parameters by the fork's names (a state dict without the ``backbone.`` prefix)."""

    def __init__(self, state_dict: Dict[str, Tensor]) -> None:
        self.sd = state_dict

    def linear(self, x: Tensor, name: str) -> Tensor:
        return F.linear(x, self.sd[f'{name}.weight'], self.sd.get(f'{name}.bias'))

    def norm(self, x: Tensor, name: str) -> Tensor:
        w = self.sd[f'{name}.weight']
        return F.layer_norm(x, w.shape, w, self.sd[f'{name}.bias'], 1e-5)

    def mlp(self, x: Tensor, name: str) -> Tensor:
        return self.linear(F.gelu(self.linear(x, f'{name}.fc1')), f'{name}.fc2')


def stem(w: Weights, x: Tensor) -> Tensor:
    """Pad to a multiple of 4, then (3x3 s2 conv, BN, Hardswish) twice."""
    H, W = x.shape[-2:]
    x = F.pad(x, (0, (-W) % 4, 0, (-H) % 4))
    for i in (0, 2):
        p = f'patch_embed.proj.{i}'
        x = F.conv2d(x, w.sd[f'{p}.c.weight'], stride=2, padding=1)
        x = F.batch_norm(x, w.sd[f'{p}.bn.running_mean'], w.sd[f'{p}.bn.running_var'],
                         w.sd[f'{p}.bn.weight'], w.sd[f'{p}.bn.bias'], False, 0.0, 1e-5)
        x = F.hardswish(x)
    return x


def partition(x: Tensor, ws: int) -> Tensor:
    B, H, W, C = x.shape
    x = x.view(B, H // ws, ws, W // ws, ws, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws * ws, C)


def reverse(windows: Tensor, ws: int, H: int, W: int) -> Tensor:
    C = windows.shape[-1]
    x = windows.view(-1, H // ws, W // ws, ws, ws, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, H, W, C)


def relative_bias(w: Weights, name: str, heads: int) -> Tensor:
    coords = torch.stack(torch.meshgrid(torch.arange(WINDOW), torch.arange(WINDOW),
                                        indexing='ij')).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + WINDOW - 1
    index = rel[..., 0] * (2 * WINDOW - 1) + rel[..., 1]
    table = w.sd[f'{name}.relative_position_bias_table']
    return table[index.reshape(-1)].view(WINDOW ** 2, WINDOW ** 2, heads).permute(2, 0, 1)


def shift_mask(Hp: int, Wp: int, shift: int) -> Tensor:
    img = torch.zeros(1, Hp, Wp, 1)
    cuts = (slice(0, -WINDOW), slice(-WINDOW, -shift), slice(-shift, None))
    count = 0
    for h in cuts:
        for c in cuts:
            img[:, h, c, :] = count
            count += 1
    ids = partition(img, WINDOW)[..., 0]
    diff = ids[:, None, :] - ids[:, :, None]
    return diff.masked_fill(diff != 0, SHIFT_MASK).masked_fill(diff == 0, 0.0)


def swin_block(w: Weights, name: str, x: Tensor, H: int, W: int, heads: int,
               shift: int) -> Tensor:
    """Swin block: normalise, zero-pad (attended), roll, window attention, unroll, crop."""
    B, L, C = x.shape
    shortcut = x
    x = F.pad(w.norm(x, f'{name}.norm1').view(B, H, W, C),
              (0, 0, 0, (-W) % WINDOW, 0, (-H) % WINDOW))
    Hp, Wp = x.shape[1:3]
    if shift:
        x = torch.roll(x, (-shift, -shift), (1, 2))
    win = partition(x, WINDOW)
    d = C // heads
    qkv = w.linear(win, f'{name}.attn.qkv').reshape(-1, WINDOW ** 2, 3, heads, d)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)
    attn = (q * d ** -0.5) @ k.transpose(-2, -1) + relative_bias(w, f'{name}.attn', heads)[None]
    if shift:
        mask = shift_mask(Hp, Wp, shift)
        nW = mask.shape[0]
        attn = (attn.view(-1, nW, heads, WINDOW ** 2, WINDOW ** 2) + mask[None, :, None])
        attn = attn.view(-1, heads, WINDOW ** 2, WINDOW ** 2)
    out = (attn.softmax(-1) @ v).transpose(1, 2).reshape(-1, WINDOW ** 2, C)
    x = reverse(w.linear(out, f'{name}.attn.proj'), WINDOW, Hp, Wp)
    if shift:
        x = torch.roll(x, (shift, shift), (1, 2))
    x = shortcut + x[:, :H, :W, :].reshape(B, H * W, C)
    return x + w.mlp(w.norm(x, f'{name}.norm2'), f'{name}.mlp')


def cross_attention(w: Weights, name: str, q_in: Tensor, kv_in: Tensor, heads: int,
                    mask=None) -> Tensor:
    """The fork's Attention(x, y, mask): separate q and kv linears, additive mask."""
    Bq, N1, C = q_in.shape
    N2, d = kv_in.shape[1], C // heads
    q = w.linear(q_in, f'{name}.attn.q').reshape(Bq, N1, heads, d).permute(0, 2, 1, 3)
    kv = w.linear(kv_in, f'{name}.attn.kv').reshape(Bq, N2, 2, heads, d).permute(2, 0, 3, 1, 4)
    attn = (q @ kv[0].transpose(-2, -1)) * d ** -0.5
    if mask is not None:
        attn = attn + mask
    out = (attn.softmax(-1) @ kv[1]).transpose(1, 2).reshape(Bq, N1, C)
    return w.linear(out, f'{name}.attn.proj')


def fork_pad_mask(size_hw: Tuple[int, int], pad_b: int, pad_r: int, k: int, stride: int,
                  left: int, right: int, rows_per_window: int) -> Tensor:
    """The fork's pad_mask: -1000 on ``[:, -pad_b:, -pad_r:]`` (Python slices) and beyond."""
    mask = torch.zeros(1, *size_hw)
    mask[:, -pad_b:, -pad_r:] = PAD_MASK
    mask = F.pad(mask, (left, right, left, right), value=PAD_MASK)
    mask = F.unfold(mask[:, None], kernel_size=k, stride=stride)
    mask = mask.view(1, k, k, -1).permute(0, 3, 1, 2).reshape(-1, 1, k * k)
    return mask.expand(-1, rows_per_window, -1)[:, None]


def semantic_attention(w: Weights, name: str, x: Tensor, H: int, W: int, heads: int, k: int,
                       y=None) -> Tuple[Tensor, int, int]:
    """SemanticAttentionBlock: pooled (or given) queries attend to a k x k neighbourhood."""
    B, L, C = x.shape
    x = x.view(B, H, W, C)
    pad_r, pad_b = (-W) % WINDOW, (-H) % WINDOW
    x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
    Hp, Wp = x.shape[1:3]
    sH, sW = Hp // WINDOW * POOL, Wp // WINDOW * POOL
    if y is None:
        win = partition(x, WINDOW).reshape(-1, WINDOW, WINDOW, C).permute(0, 3, 1, 2)
        shortcut = F.adaptive_max_pool2d(win, POOL).flatten(2).transpose(1, 2)
    else:
        y = y.reshape(B, sH // POOL, POOL, sW // POOL, POOL, C).permute(0, 1, 3, 2, 4, 5)
        shortcut = y.reshape(-1, POOL * POOL, C)
    queries = w.norm(shortcut, f'{name}.norm1')
    left, right = math.floor((k - WINDOW) / 2), math.ceil((k - WINDOW) / 2)
    xx = F.pad(x, (0, 0, left, right, left, right))
    mask = fork_pad_mask((Hp, Wp), pad_b, pad_r, k, WINDOW, left, right, POOL * POOL)
    mask = mask.repeat(B, 1, 1, 1)
    keys = F.unfold(xx.permute(0, 3, 1, 2), kernel_size=k, stride=WINDOW)
    keys = keys.view(B, C, k, k, -1).permute(0, 4, 2, 3, 1).reshape(-1, k * k, C)
    keys = w.norm(keys, f'{name}.norm1')
    out = shortcut + w.sd[f'{name}.layer_scale_1'] * cross_attention(
        w, name, queries, keys, heads, mask)
    out = out.view(B, Hp // WINDOW, Wp // WINDOW, POOL, POOL, C).permute(0, 1, 3, 2, 4, 5)
    out = out.reshape(B, -1, C)
    out = out + w.sd[f'{name}.layer_scale_2'] * w.mlp(w.norm(out, f'{name}.norm2'), f'{name}.mlp')
    return out, sH, sW


def semantic_block(w: Weights, name: str, s: Tensor, sH: int, sW: int, heads: int,
                   local: bool) -> Tensor:
    """Block on the semantic grid: attention within 3x3 windows (local) or over all."""
    B, L, C = s.shape
    x = w.norm(s, f'{name}.norm1')
    if local:
        win = x.view(B, sH // POOL, POOL, sW // POOL, POOL, C).permute(0, 1, 3, 2, 4, 5)
        win = win.reshape(-1, POOL * POOL, C)
        out = cross_attention(w, name, win, win, heads)
        out = out.view(B, sH // POOL, sW // POOL, POOL, POOL, C).permute(0, 1, 3, 2, 4, 5)
        out = out.reshape(B, -1, C)
    else:
        out = cross_attention(w, name, x, x, heads)
    s = s + w.sd[f'{name}.layer_scale_1'] * out
    return s + w.sd[f'{name}.layer_scale_2'] * w.mlp(w.norm(s, f'{name}.norm2'), f'{name}.mlp')


def restore(w: Weights, name: str, x: Tensor, H: int, W: int, s: Tensor, heads: int) -> Tensor:
    """RestoreBlock: each window's image tokens attend to 27x27 semantic tokens."""
    B, L, C = x.shape
    pad_r, pad_b = (-W) % WINDOW, (-H) % WINDOW
    x = F.pad(x.view(B, H, W, C), (0, 0, 0, pad_r, 0, pad_b))
    Hp, Wp = x.shape[1:3]
    shortcut = partition(x, WINDOW)
    queries = w.norm(shortcut, f'{name}.norm1')
    sH, sW = Hp // WINDOW * POOL, Wp // WINDOW * POOL
    y = s.reshape(B, sH, sW, C)
    left, right = math.floor((KR - POOL) / 2), math.ceil((KR - POOL) / 2)
    mask = fork_pad_mask((sH, sW), pad_b, pad_r, KR, POOL, left, right, WINDOW * WINDOW)
    mask = mask.repeat(B, 1, 1, 1)
    y = F.pad(y, (0, 0, left, right, left, right))
    keys = F.unfold(y.permute(0, 3, 1, 2), kernel_size=KR, stride=POOL)
    keys = keys.view(B, C, KR, KR, -1).permute(0, 4, 2, 3, 1).reshape(-1, KR * KR, C)
    keys = w.norm(keys, f'{name}.norm1')
    out = shortcut + w.sd[f'{name}.layer_scale_1'] * cross_attention(
        w, name, queries, keys, heads, mask)
    out = reverse(out, WINDOW, Hp, Wp)[:, :H, :W].reshape(B, H * W, C)
    return out + w.sd[f'{name}.layer_scale_2'] * w.mlp(w.norm(out, f'{name}.norm2'), f'{name}.mlp')


def patch_merging(w: Weights, name: str, x: Tensor, H: int, W: int) -> Tensor:
    B, L, C = x.shape
    x = F.pad(x.view(B, H, W, C), (0, 0, 0, W % 2, 0, H % 2))
    x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
    return w.linear(w.norm(x.reshape(B, -1, 4 * C), f'{name}.norm'), f'{name}.reduction')


def backbone(state_dict: Dict[str, Tensor], images: Tensor, heads: List[int],
             depths=(2, 2, 18, 2)) -> List[Tensor]:
    """The four normalised NCHW maps of the fork's SwinTransformer (eval mode)."""
    w = Weights(state_dict)
    x = stem(w, images)
    H, W = x.shape[-2:]
    x = x.flatten(2).transpose(1, 2)
    outs = []
    for i, (depth, h) in enumerate(zip(depths, heads)):
        for j in range(depth):
            name = f'layers.{i}.blocks.{j}'
            if i != 2:
                x = swin_block(w, name, x, H, W, h, WINDOW // 2 if j % 2 else 0)
                continue
            role = j % 6  # stage 3: units of 6 (Swin, gen 1, gen 2, local, global, restore)
            if role == 0:
                x = swin_block(w, name, x, H, W, h, 0)
            elif role == 1:
                s, sH, sW = semantic_attention(w, name, x, H, W, h, K1)
            elif role == 2:
                s, _, _ = semantic_attention(w, name, x, H, W, h, K2, y=s)
            elif role in (3, 4):
                s = semantic_block(w, name, s, sH, sW, h, local=role == 3)
            else:
                x = restore(w, name, x, H, W, s, h)
        out = w.norm(x, f'norm{i}')
        outs.append(out.view(-1, H, W, out.shape[-1]).permute(0, 3, 1, 2).contiguous())
        if i < len(depths) - 1:
            x = patch_merging(w, f'layers.{i}.downsample', x, H, W)
            H, W = (H + 1) // 2, (W + 1) // 2
    return outs
