"""One name per model: the sizes of every backbone family, in one table.

The backbones' ``arch`` names and aliases, the converter's ``--arch`` targets
(``stvit-r-swin-t``) and the reverse lookup from stock sizes (``embed_dims``,
``depths``, ``num_heads``) to a name all read :data:`ARCHS`; :func:`resolve_arch` is
the one way a backbone turns ``arch`` (a name or a dict) into its settings.
"""
import copy
from typing import Callable, Dict, Iterator, Mapping, Optional, Sequence, Tuple, Union


def units_in_deepest_stage(depths: Sequence[int]) -> Tuple[int, ...]:
    """Dumbbell units per stage: the deepest stage (the first of equals) becomes units of 6
    layers, as stage 3 of the official STViT-R-Swin; the others stay Swin stages."""
    deepest = max(range(len(depths)), key=lambda i: (depths[i], -i))
    return tuple(d // 6 if i == deepest else 0 for i, d in enumerate(depths))


_SWIN_T = dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24))
_SWIN_S = dict(embed_dims=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24))
_SWIN_B = dict(embed_dims=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32))
_SWIN_L = dict(embed_dims=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48))

# family -> size -> the sizes and per-size plan; keys a family's defaults lack are filled
# by the backbone's ``defaults`` (see :func:`resolve_arch`).
ARCHS: Dict[str, Dict[str, dict]] = {
    'deit': dict(tiny=dict(embed_dims=192, num_heads=3), small=dict(embed_dims=384, num_heads=6),
                 base=dict(embed_dims=768, num_heads=12)),
    # Swin-S/B/L: 3x3 semantic tokens per 7x7 window (official STViT-R); Swin-T (not in the
    # paper): 2x2, about 12 image tokens per semantic token (DeiT's ratio), ~0.73x FLOPs.
    'swin': dict(tiny=dict(_SWIN_T, pool_size=2), small=dict(_SWIN_S, pool_size=3),
                 base=dict(_SWIN_B, pool_size=3), large=dict(_SWIN_L, pool_size=3)),
    # 2 temporal bins per (8, 7, 7) window times the 2-D plans' spatial grid (see
    # stvit_video_swin.py for the cost of other choices).
    'video-swin': dict(tiny=dict(_SWIN_T, pool_size=(2, 2, 2)),
                       small=dict(_SWIN_S, pool_size=(2, 3, 3)),
                       base=dict(_SWIN_B, pool_size=(2, 3, 3)),
                       large=dict(_SWIN_L, pool_size=(2, 3, 3))),
}
# The prefixes a family's names may carry ('swin-t', 'deit-small'); Video Swin also takes
# the image Swin's.
PREFIXES = {'deit': ('deit', ), 'swin': ('swin', ), 'video-swin': ('video-swin', 'swin')}


def aliases(family: str, size: str) -> Tuple[str, ...]:
    """Every name of one size: 'tiny', 't', 'swin-t', 'swin-tiny', ..."""
    names = [size[0], size]
    for prefix in PREFIXES[family]:
        names += [f'{prefix}-{size[0]}', f'{prefix}-{size}']
    return tuple(names)


def size_of(family: str, name: str) -> Optional[str]:
    """The size a name of ``family`` stands for, or None."""
    for size in ARCHS[family]:
        if name in aliases(family, size):
            return size
    return None


def model_names(family: str) -> Iterator[Tuple[str, str, bool]]:
    """(model name, size, recovery) of every bare backbone: 'stvit-swin-t', 'stvit-r-swin-t'."""
    for size in ARCHS[family]:
        for recovery in (False, True):
            yield f"stvit{'-r' if recovery else ''}-{family}-{size[0]}", size, recovery


def size_for(family: str, sizes: Mapping[str, object]) -> Optional[str]:
    """The size whose ``embed_dims``/``depths``/``num_heads`` are ``sizes``, or None."""
    for size, settings in ARCHS[family].items():
        if all(settings.get(key) == value for key, value in sizes.items()):
            return size
    return None


Default = Union[object, Callable[[Tuple[int, ...]], object]]


def resolve_arch(owner: str, family: str, arch: Union[str, dict], required: Sequence[str],
                 defaults: Mapping[str, Default]) -> dict:
    """``arch`` (a name of ``family`` or a dict) -> its settings.

    Args:
        owner: class name that starts an error message.
        required: keys an arch dict must give.
        defaults: optional key -> value, or a callable of the ``depths``.
    """
    if isinstance(arch, str):
        size = size_of(family, arch)
        if size is None:
            names = sorted(n for s in ARCHS[family] for n in aliases(family, s))
            raise ValueError(f'{owner}: unknown arch {arch!r}; choose one of {names} or pass a '
                             'dict')
        arch = copy.deepcopy(ARCHS[family][size])
    elif not isinstance(arch, dict):
        raise TypeError(f'{owner}: arch must be a str or dict, got {type(arch).__name__}')
    else:
        unknown = set(arch) - set(required) - set(defaults)
        if unknown:
            raise ValueError(f'{owner}: unknown arch keys {sorted(unknown)}; allowed '
                             f'{sorted(set(required) | set(defaults))}')
        missing = set(required) - set(arch)
        if missing:
            raise ValueError(f'{owner}: arch dict misses {sorted(missing)}')
    settings = {key: arch[key] for key in required}
    depths = arch.get('depths')
    for key, default in defaults.items():
        settings[key] = arch[key] if key in arch else (
            default(depths) if callable(default) else default)
    return {key: tuple(value) if isinstance(value, list) else value
            for key, value in settings.items()}
