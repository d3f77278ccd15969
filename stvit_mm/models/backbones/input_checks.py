"""Input checks shared by the backbones: a bad input gets one line naming the fix.

``check_input`` runs at the top of every ``forward``. Checkpoint checks live in
:mod:`stvit_mm.checkpoints.plans`.
"""
import os
from typing import Optional

import torch
from torch import Tensor

# NaN/inf inputs raise (see check_input). Raising needs the answer on the host: free on the
# CPU, but on an accelerator it would stall the pipeline (a host-device sync per forward). So
# by default ('cpu') only CPU inputs are checked; STVIT_CHECK_FINITE=1 checks on every device
# (the clear error, at the cost of a sync), 0 on none (NaN then propagates to the outputs).
FINITE_CHECK_MODES = ('0', 'cpu', '1')
CHECK_FINITE = os.environ.get('STVIT_CHECK_FINITE', 'cpu')
if CHECK_FINITE not in FINITE_CHECK_MODES:
    raise ValueError(f'STVIT_CHECK_FINITE={CHECK_FINITE!r}: expected one of '
                     f'{FINITE_CHECK_MODES} (off, CPU inputs only, every device)')

_LAYOUTS = {'NCHW': ('images', '(B, C, H, W)', 'add the batch axis (x[None])'),
            'NCTHW': ('clips', '(B, C, T, H, W)',
                      "clips need a time axis: FormatShape(input_format='NCTHW')")}


def _symbolic() -> bool:
    """Tracing, compiling or exporting: values are unknown, so value checks are skipped."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


def checks_finite_on(device: torch.device) -> bool:
    """Whether :func:`check_input` looks for NaN/inf in inputs on ``device`` (see CHECK_FINITE)."""
    if CHECK_FINITE == '0' or device.type == 'meta':
        return False
    return CHECK_FINITE == '1' or device.type == 'cpu'


def check_input(x: Tensor, owner: str, in_channels: int, layout: str = 'NCHW',
                multiple_of: Optional[int] = None) -> None:
    """Raise ValueError/TypeError naming the problem and the fix for a bad backbone input.

    Checked: a tensor, the rank of ``layout``, a floating dtype, a non-empty
    batch, ``in_channels`` channels, no empty axis, sides that are multiples of
    ``multiple_of`` (when given), and finite values. NaN or inf in the input
    raise: each would spread through attention into every output token of its
    image, so a loss would turn NaN with no hint of where it came from. The
    value check runs on CPU inputs only unless ``STVIT_CHECK_FINITE=1`` (it
    needs a host-device sync elsewhere; see :func:`checks_finite_on`).

    Args:
        x: the input.
        owner: backbone name that starts the message.
        in_channels: channels the backbone was built for.
        layout: 'NCHW' (images) or 'NCTHW' (clips).
        multiple_of: required divisor of H and W, if any.
    """
    what, shape, add_axis = _LAYOUTS[layout]
    if not isinstance(x, Tensor):
        raise TypeError(f'{owner}: expected a tensor of {what} {shape}, got '
                        f'{type(x).__name__}; batch the inputs with the data preprocessor')
    if x.ndim != len(layout):
        hint = add_axis if x.ndim == len(layout) - 1 else f'reshape the input to {shape}'
        raise ValueError(f'{owner}: expected {what} {shape}, got a {x.ndim}-D tensor of shape '
                         f'{tuple(x.shape)}; {hint}')
    if not x.is_floating_point():
        raise TypeError(f'{owner}: expected a floating-point tensor, got {x.dtype}; normalise '
                        'the input with the data preprocessor (or convert it with .float())')
    if x.shape[0] == 0:
        raise ValueError(f'{owner}: empty batch (B=0) of shape {tuple(x.shape)}; skip the call '
                         'when there is nothing to run')
    if x.shape[1] != in_channels:
        fix = ('clips are (B, C, T, H, W) (FormatShape NCTHW)' if layout == 'NCTHW' else
               'images are (B, C, H, W)')
        raise ValueError(f'{owner}: expected {in_channels} input channels, got {x.shape[1]}; '
                         f'set in_channels in the backbone config ({fix})')
    if 0 in x.shape[2:]:
        kind = 'clip' if layout == 'NCTHW' else 'image'
        raise ValueError(f'{owner}: empty {kind} of shape {tuple(x.shape)}; every axis needs '
                         'at least one pixel (check Resize/crop sizes)')
    if multiple_of:
        H, W = x.shape[-2:]
        if H % multiple_of or W % multiple_of:
            raise ValueError(f'{owner}: input {H}x{W} is not a multiple of patch_size '
                             f'{multiple_of}; pad or resize (e.g. size_divisor in the data '
                             'preprocessor)')
    if _symbolic() or not checks_finite_on(x.device):
        return
    # One sum is finite only when every value is (NaN and inf propagate): a cheap first test,
    # exact when it passes; an overflowing sum of finite values falls to the full test.
    if bool(torch.isfinite(x.sum())):
        return
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        nan = int(torch.isnan(x).sum())
        inf = int(x.numel() - finite.sum()) - nan
        raise ValueError(f'{owner}: input holds {nan} NaN and {inf} inf values (shape '
                         f'{tuple(x.shape)}); fix the data: a corrupt file, a zero std in the '
                         'data preprocessor, or an overflow in fp16 preprocessing')
