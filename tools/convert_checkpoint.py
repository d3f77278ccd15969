#!/usr/bin/env python
"""Convert Swin / DeiT / official STViT-R-Swin checkpoints for stvit-mm models, offline.

    python tools/convert_checkpoint.py SRC DST --from SOURCE (--arch NAME | --config CONFIG)
                                       [--ignore REGEX ...] [--cfg-options k=v ...]

SOURCE is the layout of SRC: official-stvit-r-swin (changsn/STViT-R release
files), swin-official (Microsoft Swin), deit-official (facebookresearch/deit),
timm (timm ViT/DeiT), mmpretrain (Swin or DeiT classifier, or a bare backbone),
mmdet (a whole detector with a Swin backbone, or a bare backbone) or mmseg (a
whole segmentor such as UperNet Swin, or a bare backbone: mmseg's Swin
ImageNet files under pretrain/swin/). The
target is an ``--arch`` preset (a bare backbone) or the model of a
``--config`` (checked against its whole state dict).

The rule: every source key is mapped to a target key, or dropped for a stated
reason (recomputed buffers, classifier heads, class tokens); every target key
is filled, or reported as *new* when the source cannot have it (the layer
scales and global centres STViT adds to Swin/DeiT blocks, output norms a
classifier lacks, the neck and heads of a detector made from a classifier).
Anything else -- a source key with no place in the target, a target key the
source should have had, a shape that differs -- stops the conversion with the
list, unless an ``--ignore`` regex matches one of the key names named there.

Non-backbone keys of a whole-model source (mmdet neck/heads, mmseg decode and
auxiliary heads, mmpretrain head) keep their names. With ``--config`` they must match the target's
exactly when the target has any of them; when it has none (an ImageNet
classifier made into a detector) they are dropped and the target's own are
new. With ``--arch`` they are written unchecked.

DST holds ``{'state_dict': ..., 'meta': {...}}``, which mmengine's
``load_checkpoint``, ``load_from`` and ``init_cfg=dict(type='Pretrained')``
read; the conversion is verified by loading DST's tensors into the target.
"""
import argparse
import os
import os.path as osp
import re
import sys
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

# mmengine imports pkg_resources; its deprecation warning is noise in a tool's output.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import stvit_mm  # noqa: E402,F401  (compat shims before any mm* import)
import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from stvit_mm.analysis import ConfigError, build_model, load_config  # noqa: E402
from stvit_mm.models import STViT, STViTSwin  # noqa: E402
from stvit_mm.models.backbones.input_checks import PLAN_FIX, POOLED_GRID  # noqa: E402
from stvit_mm.utils.safe_checkpoint import (  # noqa: E402
    UnsafeCheckpointError, add_trust_checkpoint_argument, load_checkpoint_file)
from stvit_mm.models.converters import (Conversion, convert_deit, convert_swin,  # noqa: E402
                                        deit_new_parameter, detect_deit_layout,
                                        detect_swin_layout, swin_new_parameter)

# --from name -> the (family, layout) pairs such a file may be in
SOURCES: Dict[str, Tuple[Tuple[str, str], ...]] = {
    'official-stvit-r-swin': (('swin', 'official-stvit-r'), ),
    'swin-official': (('swin', 'official'), ),
    'deit-official': (('deit', 'timm'), ),
    'timm': (('deit', 'timm'), ),
    'mmpretrain': (('swin', 'openmmlab'), ('deit', 'mmpretrain')),
    'mmdet': (('swin', 'openmmlab'), ),
    'mmseg': (('swin', 'openmmlab'), ),  # mmseg's Swin has mmdet's names (and unfold order)
}
FAMILY_BACKBONE = {'swin': STViTSwin, 'deit': STViT}
# The official STViT-R-Swin runs' switches (as configs/stvit_r_swin_{s,b}_in1k.py): the conv
# stem changes the keys, the others only what the layers compute.
OFFICIAL_STVIT_R_SWIN = dict(stem='conv', gen_shortcut=False, global_centres=False,
                             layer2_scope='global', recovery_scope='global',
                             neighbourhood_inside=True, fit_window=True)
BACKBONE_PREFIX = 'backbone.'
MAX_LISTED = 20  # problems listed per kind in an error message


def _arch_presets() -> Dict[str, Tuple[type, dict]]:
    presets = {}
    for short, size in (('t', 'tiny'), ('s', 'small'), ('b', 'base'), ('l', 'large')):
        if short != 'l':  # no DeiT-L
            presets[f'stvit-deit-{short}'] = (STViT, dict(arch=f'deit-{size}'))
            presets[f'stvit-r-deit-{short}'] = (STViT, dict(arch=f'deit-{size}', recovery=True))
        presets[f'stvit-swin-{short}'] = (STViTSwin, dict(arch=size, recovery=False,
                                                             out_indices=(3, )))
        presets[f'stvit-r-swin-{short}'] = (STViTSwin, dict(arch=size, recovery=True))
    return presets


ARCHS = _arch_presets()


class ConversionError(ValueError):
    """A checkpoint that cannot be converted as asked; the message says what to change."""


@dataclass
class Target:
    """The model DST is made for.

    Attributes:
        model: what DST is checked against and verified to load into.
        backbone: the STViT / STViTSwin in ``model`` (``model`` itself for a bare backbone).
        name: how messages name it.
        whole_model: ``model`` holds ``backbone.*`` plus neck/heads (built from a config).
    """
    model: nn.Module
    backbone: nn.Module
    name: str
    whole_model: bool


@dataclass
class Problem:
    """Something that stops the conversion unless ``--ignore`` matches one of ``names``."""
    kind: str  # 'unmapped' (source key without place), 'missing' (target key), 'shape'
    names: Tuple[str, ...]
    text: str
    ours: Optional[str] = None  # our key left at initialisation if ignored


@dataclass
class Result:
    """A finished conversion: DST's tensors and the fate of every key."""
    state_dict: Dict[str, Tensor]
    source: str
    layout: str
    target: str
    source_keys: List[str]
    mapped: List[str]  # source keys that fed a written tensor
    dropped: Dict[str, str]  # source key -> why (by design)
    new: Dict[str, str]  # our key -> why the source cannot have it
    ignored: Dict[str, str]  # key -> the problem --ignore let through
    carried: List[str]  # non-backbone keys written unchanged
    carried_checked: bool
    backbone_prefix: str
    whole_model: bool = False
    meta: dict = field(default_factory=dict)


def load_source(path: str) -> Dict[str, Tensor]:
    """The state dict in a checkpoint file (``.pth``/``.pt``/``.ckpt`` or ``.safetensors``)."""
    if not osp.isfile(path):
        raise ConversionError(f'{path}: no such file')
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        return dict(load_file(path))
    # Weights and known types only (official release files' yacs config loads as a dict).
    return unwrap_checkpoint(load_checkpoint_file(path, map_location='cpu'), path)


def unwrap_checkpoint(obj: object, name: str = 'checkpoint') -> Dict[str, Tensor]:
    """The tensors of ``{'state_dict': ...}`` (mmengine), ``{'model': ...}`` (official) or a bare
    state dict, without DistributedDataParallel's ``module.`` prefix."""
    for wrapper in ('state_dict', 'model'):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
            break
    if not isinstance(obj, dict) or not obj:
        raise ConversionError(f'{name} holds no state dict (expected a dict of tensors, or one '
                              "under 'state_dict' or 'model')")
    not_tensors = [k for k, v in obj.items() if not isinstance(v, Tensor)]
    if not_tensors:
        raise ConversionError(f'{name} is not a state dict: {compact_keys(not_tensors)} are not '
                              'tensors')
    if all(k.startswith('module.') for k in obj):
        return {k[len('module.'):]: v for k, v in obj.items()}
    return dict(obj)


def target_from_arch(arch: str, source: str) -> Target:
    """A bare backbone from a preset; official STViT-R-Swin files get the official switches."""
    if arch not in ARCHS:
        raise ConversionError(f'unknown --arch {arch!r}; choose one of {sorted(ARCHS)} or give '
                              '--config')
    cls, kwargs = ARCHS[arch]
    if cls is STViTSwin and source == 'official-stvit-r-swin':
        kwargs = {**kwargs, **OFFICIAL_STVIT_R_SWIN}
    backbone = cls(**kwargs).eval()
    return Target(model=backbone, backbone=backbone, name=arch, whole_model=False)


def target_from_config(config: str, cfg_options: Optional[dict] = None) -> Target:
    """The model of a config (built without pretrained weights), e.g. a detector."""
    model = build_model(load_config(config, cfg_options))
    backbone = getattr(model, 'backbone', model)
    if not isinstance(backbone, (STViT, STViTSwin)):
        raise ConversionError(f'{config}: the model\'s backbone is a {type(backbone).__name__}; '
                              'converted checkpoints are for STViT and STViTSwin (video '
                              'backbones inflate 2-D checkpoints on load instead)')
    name = f'{type(model).__name__} of {config}'
    return Target(model=model, backbone=backbone, name=name, whole_model=backbone is not model)


def _detect_layout(keys: Sequence[str], source: str, target: Target) -> Tuple[str, str]:
    """(family, layout) of the backbone keys; checked against ``--from`` and the target."""
    if any(k.startswith('generator.') or '.units.' in k for k in keys):
        raise ConversionError('the checkpoint is already in our layout (it has STViT generator '
                              'or unit keys); load it directly')
    as_dict = dict.fromkeys(keys)
    found = next(((family, layout) for family, layout in (
        ('swin', detect_swin_layout(as_dict)), ('deit', detect_deit_layout(as_dict)))
        if layout is not None), None)
    if found is None:
        raise ConversionError(f'the checkpoint is in none of the layouts --from {source} reads '
                              f'(its keys start {", ".join(sorted(keys)[:3])}, ...); is it '
                              'already converted?')
    if found not in SOURCES[source]:
        fits = [name for name, layouts in SOURCES.items() if found in layouts]
        raise ConversionError(f'the checkpoint is a {found[0]} checkpoint in the {found[1]} '
                              f'layout, not --from {source}; use --from {" or ".join(fits)}')
    wanted = FAMILY_BACKBONE[found[0]]
    if not isinstance(target.backbone, wanted):
        raise ConversionError(f'{found[0]} weights cannot initialise a '
                              f'{type(target.backbone).__name__} ({target.name}); pick a '
                              f'{wanted.__name__} target')
    return found


def _convert_backbone(state_dict: Dict[str, Tensor], family: str, layout: str,
                      backbone: nn.Module) -> Conversion:
    if family == 'swin':
        return convert_swin(state_dict, layout, backbone)
    return convert_deit(state_dict, layout, backbone.num_full_layers,
                        backbone.num_semantic_layers, backbone.recovery_enabled,
                        backbone.pos_grid)


def _new_parameter(family: str, layout: str, key: str) -> Optional[str]:
    return swin_new_parameter(key, layout) if family == 'swin' else deit_new_parameter(key)


def _place_backbone(conv: Conversion, ours: Dict[str, torch.Size], family: str, layout: str,
                    src_prefix: str, out_prefix: str, problems: List[Problem]
                    ) -> Tuple[Dict[str, Tensor], Dict[str, str]]:
    """Converted backbone tensors checked against ours: (written, new keys with why)."""
    written = {}
    for key, value in conv.tensors.items():
        sources = tuple(src_prefix + s for s in conv.sources[key])
        origin = f'{" + ".join(sources)} -> {out_prefix}{key}'
        if key not in ours:
            problems.append(Problem('unmapped', sources + (out_prefix + key, ),
                                    f'{origin}: not a key of the target'))
        elif value.shape != ours[key]:
            problems.append(Problem('shape', sources + (out_prefix + key, ),
                                    f'{origin}: shape {tuple(value.shape)}, the target has '
                                    f'{tuple(ours[key])}', ours=out_prefix + key))
        else:
            written[out_prefix + key] = value
    for key, why in conv.unmapped.items():
        problems.append(Problem('unmapped', (src_prefix + key, ), f'{src_prefix}{key}: {why}'))
    new = {}
    for key in ours:
        if key in conv.tensors:
            continue
        why = _new_parameter(family, layout, key)
        if why:
            new[out_prefix + key] = why
        else:
            problems.append(Problem('missing', (out_prefix + key, ),
                                    f'{out_prefix}{key}: not in the checkpoint',
                                    ours=out_prefix + key))
    return written, new


def _official_head(source: Dict[str, Tensor], dropped: Dict[str, str],
                   theirs: Dict[str, torch.Size]) -> Dict[str, Tuple[Tensor, str]]:
    """An official classifier ``head.*`` renamed to the target's one head of that shape.

    Official Swin / DeiT / STViT-R files name their linear classifier ``head``;
    mmpretrain heads nest it (``head.fc``, ``head.layers.head``).
    """
    if 'head.weight' not in dropped or 'head.weight' not in source:
        return {}
    shape = source['head.weight'].shape
    fits = [k for k, s in theirs.items()
            if k.startswith('head.') and k.endswith('.weight') and s == shape]
    if len(fits) != 1:
        return {}
    renamed = {fits[0]: (source['head.weight'], 'head.weight')}
    bias = fits[0][:-len('weight')] + 'bias'
    if 'head.bias' in source and bias in theirs:
        renamed[bias] = (source['head.bias'], 'head.bias')
    for _, source_key in renamed.values():
        del dropped[source_key]
    return renamed


def _carry_task_keys(task: Dict[str, Tuple[Tensor, str]], target: Target,
                     problems: List[Problem]
                     ) -> Tuple[Dict[str, Tensor], Dict[str, str], Dict[str, str], bool]:
    """Non-backbone tensors ({our name: (tensor, source key)}) against the target.

    Returns:
        (written, {source key: why dropped}, {our key: why new}, whether checked).
    """
    if not target.whole_model:
        return {k: v for k, (v, _) in task.items()}, {}, {}, False
    theirs = {k: v.shape for k, v in target.model.state_dict().items()
              if not k.startswith(BACKBONE_PREFIX)}
    kind = type(target.model).__name__
    if not any(k in theirs for k in task):
        # another task (e.g. ImageNet classifier -> detector): nothing of it fits
        dropped = {src: f'not part of a {kind} (the source is another kind of model)'
                   for _, src in task.values()}
        new = {k: f'neck/heads of the {kind} (the source has none)' for k in theirs}
        return {}, dropped, new, True
    written = {}
    for key, (value, src) in task.items():
        if key not in theirs:
            problems.append(Problem('unmapped', (src, ), f'{src}: not a key of the target'))
        elif value.shape != theirs[key]:
            problems.append(Problem('shape', (src, ), f'{src}: shape {tuple(value.shape)}, the '
                                    f'target has {tuple(theirs[key])}', ours=key))
        else:
            written[key] = value
    for key in theirs:
        if key not in task:
            problems.append(Problem('missing', (key, ), f'{key}: not in the checkpoint', ours=key))
    return written, {}, {}, True


def _split_backbone(tensors: Dict[str, Tensor]) -> Tuple[Dict[str, Tensor], Dict[str, Tensor], str]:
    """(backbone tensors without prefix, the other tensors, the backbone prefix of the source)."""
    if not any(k.startswith(BACKBONE_PREFIX) for k in tensors):
        return dict(tensors), {}, ''
    backbone = {k[len(BACKBONE_PREFIX):]: v for k, v in tensors.items()
                if k.startswith(BACKBONE_PREFIX)}
    rest = {k: v for k, v in tensors.items() if not k.startswith(BACKBONE_PREFIX)}
    return backbone, rest, BACKBONE_PREFIX


def _settle(problems: List[Problem], ignore: Sequence[str], target: Target) -> Dict[str, str]:
    """Problems matched by an ``--ignore`` regex ({key: problem}); raise on the others."""
    patterns = []
    for pattern in ignore:
        try:
            patterns.append(re.compile(pattern))
        except re.error as error:
            raise ConversionError(f'--ignore {pattern!r} is not a valid regex: {error}')
    ignored, errors = {}, []
    for problem in problems:
        if any(p.search(name) for p in patterns for name in problem.names):
            ignored[problem.names[0]] = problem.text
        else:
            errors.append(problem)
    if errors:
        raise ConversionError(_describe_errors(errors, target))
    return ignored


def _describe_errors(errors: List[Problem], target: Target) -> str:
    titles = {'unmapped': ('source key', 'with no place in the target'),
              'missing': ('target key', 'not in the checkpoint'),
              'shape': ('tensor', 'of another shape')}
    lines = [f'cannot convert for {target.name}:']
    for kind, (noun, what) in titles.items():
        found = [p for p in errors if p.kind == kind]
        if not found:
            continue
        lines.append(f'  {_count(len(found), noun)} {what}:')
        # missing keys say nothing but their name: list them as patterns
        texts = (key_patterns([p.names[0] for p in found]) if kind == 'missing' else
                 [p.text for p in found])
        lines += [f'    {text}' for text in texts[:MAX_LISTED]]
        if len(texts) > MAX_LISTED:
            lines.append(f'    ... and {len(texts) - MAX_LISTED} more')
    lines.append('Check --from and --arch/--config, or leave these keys out with --ignore REGEX '
                 '(matched against the key names above).')
    return '\n'.join(lines)


def _count(number: int, noun: str) -> str:
    return f'{number} {noun}' + ('' if number == 1 else 's')


def convert_checkpoint(checkpoint: Dict[str, Tensor], source: str, target: Target,
                       ignore: Sequence[str] = ()) -> Result:
    """Convert a state dict in the ``source`` layout for ``target``; see the module docstring.

    The check at the end loads the result into ``target.model``, which then holds it.

    Raises:
        ConversionError: wrong layout or target, or problems no ``ignore`` regex matches.
    """
    if source not in SOURCES:
        raise ConversionError(f'unknown --from {source!r}; choose one of {sorted(SOURCES)}')
    tensors = unwrap_checkpoint(checkpoint)
    backbone_sd, rest, src_prefix = _split_backbone(tensors)
    family, layout = _detect_layout(list(backbone_sd), source, target)
    conv = _convert_backbone(backbone_sd, family, layout, target.backbone)
    if conv.plan_mismatch:  # blocks placed by index would land in layers of other roles
        raise ConversionError(f'cannot convert for {target.name}: the checkpoint has another '
                              f'sparsification plan than the target: {conv.plan_mismatch}; '
                              f'{PLAN_FIX}')
    for key, grid in target.backbone.state_dict().items():  # sources carry no pool-size record
        if key.endswith(POOLED_GRID):
            conv.put(key, grid.clone())
    out_prefix = BACKBONE_PREFIX if target.whole_model or src_prefix else ''
    ours = {k: v.shape for k, v in target.backbone.state_dict().items()}
    problems: List[Problem] = []
    written, new = _place_backbone(conv, ours, family, layout, src_prefix, out_prefix, problems)

    task = {k: (v, k) for k, v in rest.items()}
    if target.whole_model and not rest:
        theirs = {k: v.shape for k, v in target.model.state_dict().items()
                  if not k.startswith(BACKBONE_PREFIX)}
        task = _official_head(backbone_sd, conv.dropped, theirs)
    carried, task_dropped, task_new, checked = _carry_task_keys(task, target, problems)
    ignored = _settle(problems, ignore, target)
    written.update(carried)
    new.update(task_new)
    dropped = {src_prefix + k: why for k, why in conv.dropped.items()}
    dropped.update(task_dropped)
    mapped = sorted({src_prefix + s for k, srcs in conv.sources.items()
                     if out_prefix + k in written for s in srcs}
                    | {src for k, (_, src) in task.items() if k in carried})
    result = Result(state_dict=written, source=source, layout=layout, target=target.name,
                    source_keys=sorted(tensors), mapped=mapped, dropped=dropped, new=new,
                    ignored=ignored, carried=sorted(carried), carried_checked=checked,
                    backbone_prefix=out_prefix, whole_model=target.whole_model)
    _verify_loads(result, target, problems)
    result.meta = dict(converted_by='tools/convert_checkpoint.py', source=source, layout=layout,
                       target=target.name, new=new, dropped=dropped, ignored=ignored)
    return result


def _verify_loads(result: Result, target: Target, problems: List[Problem]) -> None:
    """Load the result into the target: only the new and ignored keys may be missing."""
    left = set(result.new) | {p.ours for p in problems
                              if p.ours and p.names[0] in result.ignored}
    tensors, prefix = result.state_dict, result.backbone_prefix
    if not target.whole_model:  # a bare backbone: without the source's prefix and neck/heads
        tensors = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        left = {k[len(prefix):] for k in left}
    outcome = target.model.load_state_dict(dict(tensors), strict=False)
    # BatchNorm fills a missing num_batches_tracked itself (old-checkpoint compatibility), so
    # torch never reports it missing, e.g. for new mmseg heads (BN) of an ImageNet backbone.
    counter = '.num_batches_tracked'
    left = {k for k in left if not k.endswith(counter) or k in outcome.missing_keys}
    if set(outcome.missing_keys) != left or outcome.unexpected_keys:
        raise RuntimeError(f'conversion bug: loading into {target.name} left '
                           f'{sorted(set(outcome.missing_keys) ^ left)} unexpectedly missing/'
                           f'filled and {outcome.unexpected_keys} unexpected')


def compact_keys(keys: Sequence[str], limit: Optional[int] = None) -> str:
    """:func:`key_patterns` joined, at most ``limit`` of them."""
    patterns = key_patterns(keys)
    if limit is not None and len(patterns) > limit:
        patterns = patterns[:limit] + [f'... ({_count(len(patterns) - limit, "more pattern")})']
    return ', '.join(patterns)


def key_patterns(keys: Sequence[str]) -> List[str]:
    """Keys summarised as exact patterns, e.g. 'stages.{0,1,3}.blocks.{0-1}.norm1.{weight,bias}'.

    Keys are merged only where they differ in a single place (the last name, or
    one number), so every pattern stands for exactly the keys it came from.
    """
    items = [tuple(_slot(part) for part in key.split('.')) for key in keys]
    items = _merge_at(items, lambda parts: len(parts) - 1)  # weight/bias siblings
    width = max((len(parts) for parts in items), default=0)
    for position in reversed(range(width)):
        items = _merge_at(items, lambda parts, p=position: p
                          if p < len(parts) and isinstance(parts[p], tuple)
                          and all(isinstance(v, int) for v in parts[p]) else None)
    return ['.'.join(_render(part) for part in parts) for parts in items]


def _slot(part: str) -> tuple:
    """A key component as a one-value slot: numbers as ints, so that they sort and merge."""
    return (int(part), ) if part.isdigit() else (part, )


def _merge_at(items: List[tuple], position_of: Callable[[tuple], Optional[int]]) -> List[tuple]:
    """Merge items equal everywhere except at ``position_of(item)`` (None: leave it alone)."""
    groups: Dict[tuple, list] = {}  # (item with a hole at the position, position) -> values
    for parts in items:
        position = position_of(parts)
        if position is None:
            groups.setdefault((parts, None), [])
            continue
        hole = parts[:position] + (None, ) + parts[position + 1:]
        values = groups.setdefault((hole, position), [])
        values += [v for v in parts[position] if v not in values]
    merged = []
    for (parts, position), values in groups.items():
        if position is None:
            merged.append(parts)
            continue
        if all(isinstance(v, int) for v in values):
            values = sorted(values)
        merged.append(parts[:position] + (tuple(values), ) + parts[position + 1:])
    return merged


def _render(slot: tuple) -> str:
    if len(slot) == 1:
        return str(slot[0])
    if all(isinstance(v, int) for v in slot) and list(slot) == list(range(slot[0], slot[-1] + 1)):
        return f'{{{slot[0]}-{slot[-1]}}}'
    return '{' + ','.join(map(str, slot)) + '}'


def format_report(result: Result, src: str, dst: str) -> str:
    """One paragraph: what was mapped, dropped, ignored, left at initialisation, how to load."""
    backbone_written = len(result.state_dict) - len(result.carried)
    parts = [f'Converted {src} (--from {result.source}, {result.layout} layout) for '
             f'{result.target}: {len(result.source_keys)} source tensors, '
             f'{len(result.mapped)} mapped, {backbone_written} backbone tensors written']
    if result.carried:
        how = ('checked against the target' if result.carried_checked else
               'not checked: give --config to check them')
        parts.append(f'{_count(len(result.carried), "non-backbone tensor")} kept under their names '
                     f'({compact_keys(sorted({k.split(".")[0] + ".*" for k in result.carried}))}'
                     f'; {how})')
    by_reason: Dict[str, List[str]] = {}
    for key, why in result.dropped.items():
        by_reason.setdefault(why, []).append(key)
    if by_reason:
        parts.append(f'dropped by design {len(result.dropped)}: ' + '; '.join(
            f'{len(keys)} x {why} ({compact_keys(keys, limit=3)})'
            for why, keys in by_reason.items()))
    if result.ignored:
        parts.append(f'ignored (--ignore) {len(result.ignored)}: '
                     f'{compact_keys(list(result.ignored), limit=6)}')
    if result.new:
        parts.append(f'left at initialisation (new, the source cannot have them) '
                     f'{len(result.new)}: {_describe_new(result)}')
    else:
        parts.append('no key left at initialisation')
    return '; '.join(parts) + f'. Wrote {dst}: {_how_to_load(result, dst)}.'


def _describe_new(result: Result) -> str:
    """New backbone keys as patterns; a new neck/heads as its modules with their key counts."""
    task = [k for k in result.new if result.whole_model and not k.startswith(BACKBONE_PREFIX)]
    backbone = [k for k in result.new if k not in task]
    described = [compact_keys(backbone, limit=12)] if backbone else []
    described += [f'{name}.* ({count})'
                  for name, count in Counter(k.split('.')[0] for k in task).items()]
    return ', '.join(described)


def _how_to_load(result: Result, dst: str) -> str:
    if result.whole_model:
        return f"load it with load_from='{dst}' in the config (or tools/test.py CONFIG {dst})"
    if result.backbone_prefix:
        return (f"its backbone keys start with 'backbone.': load_from='{dst}' in a whole-model "
                f"config, or init_cfg=dict(type='Pretrained', checkpoint='{dst}', "
                "prefix='backbone.') in the backbone")
    return f"load it with init_cfg=dict(type='Pretrained', checkpoint='{dst}') in the backbone"


def save_result(result: Result, dst: str) -> None:
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save({'state_dict': result.state_dict, 'meta': result.meta}, dst)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert a Swin / DeiT / official STViT-R-Swin checkpoint for an stvit-mm '
        'model, reporting every key that is dropped or left at initialisation.')
    parser.add_argument('src', help='source checkpoint (.pth/.pt/.ckpt or .safetensors)')
    parser.add_argument('dst', help='converted checkpoint to write')
    parser.add_argument('--from', dest='source', required=True, choices=sorted(SOURCES),
                        help='layout of SRC')
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument('--arch', choices=sorted(ARCHS),
                        help='bare backbone preset (official-stvit-r-swin sources get the '
                        'official switches: conv stem, ...)')
    target.add_argument('--config', help='config whose model DST is for (checked against its '
                        'whole state dict), or pkg::rel')
    parser.add_argument('--ignore', nargs='+', default=[], metavar='REGEX',
                        help='leave out keys matching any REGEX instead of failing on them')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. model.backbone.arch=small')
    add_trust_checkpoint_argument(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        if args.cfg_options and not args.config:
            raise ConversionError('--cfg-options changes a config: give --config')
        if osp.abspath(args.src) == osp.abspath(args.dst):
            raise ConversionError('DST must differ from SRC (SRC is never overwritten)')
        checkpoint = load_source(args.src)
        target = (target_from_config(args.config, args.cfg_options) if args.config else
                  target_from_arch(args.arch, args.source))
        result = convert_checkpoint(checkpoint, args.source, target, args.ignore)
    except (ConversionError, ConfigError, FileNotFoundError, UnsafeCheckpointError) as error:
        print(f'convert_checkpoint.py: error: {error}', file=sys.stderr)
        return 1
    save_result(result, args.dst)
    print(format_report(result, args.src, args.dst))
    return 0


if __name__ == '__main__':
    sys.exit(main())
