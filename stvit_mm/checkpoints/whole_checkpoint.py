"""Whole-checkpoint conversion: a source file's tensors -> a checkpoint for one of our models.

The rule: every source key is mapped to a target key, or dropped for a stated
reason (recomputed buffers, classifier heads, class tokens); every target key
is filled, or reported as *new* when the source cannot have it (the layer
scales and global centres STViT adds to Swin/DeiT blocks, output norms a
classifier lacks, the neck and heads of a detector made from a classifier).
Anything else -- a source key with no place in the target, a target key the
source should have had, a shape that differs -- stops the conversion with the
list, unless an ``ignore`` regex matches one of the key names named there.

Non-backbone keys of a whole-model source (mmdet neck/heads, mmseg decode and
auxiliary heads, mmpretrain head) keep their names; an official classifier's
``head`` is renamed to the target classifier's one head of its shape
(:func:`map_official_head`). Against a whole model they must match the target's
exactly when the target has any of them; when it has none (an ImageNet
classifier made into a detector) they are dropped and the target's own are
new. Against a bare backbone they are written unchecked. The result is
verified by loading it into the target.

Backbone keys go through :func:`~.layouts.convert`, as in the backbones' load
pre-hook; this module adds what only a whole model or a file can have (heads,
task keys, a report), which is why tools/convert_checkpoint.py is a thin CLI
over it. Messages name the tool's flags (``--from``, ``--ignore``).
"""
import os
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from ..archs import model_names
from .conversion import Conversion, ConversionError, unwrap_checkpoint
from .layouts import convert, detect_layout, family_of, is_our_layout, new_parameter
from .plans import PLAN_FIX, PLAN_RECORDS
from .report import describe_errors
from .safe_loading import load_checkpoint_file

# source name (the tool's --from) -> the layouts such a file may be in
SOURCES: Dict[str, Tuple[str, ...]] = {
    'official-stvit-r-swin': ('official-stvit-r', ),
    'swin-official': ('official', ),
    'deit-official': ('timm', ),
    'timm': ('timm', ),
    'mmpretrain': ('openmmlab', 'mmpretrain'),
    'mmdet': ('openmmlab', ),
    'mmseg': ('openmmlab', ),  # mmseg's Swin has mmdet's names (and unfold order)
}
# the backbone (registry type name) each checkpoint family converts into
FAMILY_BACKBONE = {'swin': 'STViTSwin', 'deit': 'STViT'}
BACKBONE_PREFIX = 'backbone.'


def _target_archs() -> Dict[str, dict]:
    """Bare-backbone configs by name (the tool's --arch), from the one name table
    (:mod:`stvit_mm.archs`): stvit[-r]-{deit,swin}-{t,s,b,l}."""
    archs = {}
    for family in ('deit', 'swin'):
        for name, size, recovery in model_names(family):
            archs[name] = dict(type=FAMILY_BACKBONE[family], arch=size, recovery=recovery)
            if family == 'swin' and not recovery:
                archs[name]['out_indices'] = (3, )
    return archs


TARGET_ARCHS = _target_archs()


@dataclass
class Target:
    """The model a converted checkpoint is made for.

    Attributes:
        model: what the result is checked against and verified to load into.
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
    """Something that stops the conversion unless an ``ignore`` regex matches one of ``names``."""
    kind: str  # 'unmapped' (source key without place), 'missing' (target key), 'shape'
    names: Tuple[str, ...]
    text: str
    ours: Optional[str] = None  # our key left at initialisation if ignored


@dataclass
class Result:
    """A finished conversion: the tensors to write and the fate of every key."""
    state_dict: Dict[str, Tensor]
    source: str
    layout: str
    target: str
    source_keys: List[str]
    mapped: List[str]  # source keys that fed a written tensor
    dropped: Dict[str, str]  # source key -> why (by design)
    new: Dict[str, str]  # our key -> why the source cannot have it
    ignored: Dict[str, str]  # key -> the problem ``ignore`` let through
    carried: List[str]  # non-backbone keys written unchanged
    carried_checked: bool
    backbone_prefix: str
    whole_model: bool = False
    meta: dict = field(default_factory=dict)


def target_from_arch(arch: str, source: str) -> Target:
    """A bare backbone from :data:`TARGET_ARCHS`; official STViT-R-Swin files get the official
    preset (conv stem, ..., see ``backbones/presets.py``)."""
    if arch not in TARGET_ARCHS:
        raise ConversionError(f'unknown --arch {arch!r}; choose one of {sorted(TARGET_ARCHS)} or '
                              'give --config')
    from mmengine.registry import MODELS  # our backbones are registered by whoever built us
    cfg = dict(TARGET_ARCHS[arch])
    if cfg['type'] == 'STViTSwin' and source == 'official-stvit-r-swin':
        cfg['preset'] = 'official'
    backbone = MODELS.build(cfg).eval()
    return Target(model=backbone, backbone=backbone, name=arch, whole_model=False)


def target_from_model(model: nn.Module, name: str) -> Target:
    """A whole model (detector, classifier, ...) or a bare backbone as a conversion target."""
    backbone = getattr(model, 'backbone', model)
    if type(backbone).__name__ not in FAMILY_BACKBONE.values():
        raise ConversionError(f'{name}: the model\'s backbone is a {type(backbone).__name__}; '
                              'converted checkpoints are for STViT and STViTSwin (video '
                              'backbones inflate 2-D checkpoints on load instead)')
    return Target(model=model, backbone=backbone, name=f'{type(model).__name__} of {name}',
                  whole_model=backbone is not model)


def load_source(path: str) -> Dict[str, Tensor]:
    """The state dict in a checkpoint file (``.pth``/``.pt``/``.ckpt`` or ``.safetensors``)."""
    if not osp.isfile(path):
        raise ConversionError(f'{path}: no such file')
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        return dict(load_file(path))
    # Weights and known types only (official release files' yacs config loads as a dict).
    return unwrap_checkpoint(load_checkpoint_file(path, map_location='cpu'), path)


def save_result(result: Result, dst: str) -> None:
    """``{'state_dict', 'meta'}``, what mmengine's ``load_checkpoint``, ``load_from`` and
    ``init_cfg=dict(type='Pretrained')`` read."""
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save({'state_dict': result.state_dict, 'meta': result.meta}, dst)


def _detect_layout(keys: Sequence[str], source: str, target: Target) -> str:
    """The layout of the backbone keys, checked against ``source`` and the target."""
    if is_our_layout(keys):
        raise ConversionError('the checkpoint is already in our layout (it has STViT generator '
                              'or unit keys); load it directly')
    layout = detect_layout(dict.fromkeys(keys))
    if layout is None:
        raise ConversionError(f'the checkpoint is in none of the layouts --from {source} reads '
                              f'(its keys start {", ".join(sorted(keys)[:3])}, ...); is it '
                              'already converted?')
    family = family_of(layout)
    if layout not in SOURCES[source]:
        fits = [name for name, layouts in SOURCES.items() if layout in layouts]
        raise ConversionError(f'the checkpoint is a {family} checkpoint in the {layout} '
                              f'layout, not --from {source}; use --from {" or ".join(fits)}')
    wanted = FAMILY_BACKBONE[family]
    if type(target.backbone).__name__ != wanted:
        raise ConversionError(f'{family} weights cannot initialise a '
                              f'{type(target.backbone).__name__} ({target.name}); pick a '
                              f'{wanted} target')
    return layout


def _place_backbone(conv: Conversion, ours: Dict[str, torch.Size], layout: str,
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
        why = new_parameter(key, layout)
        if why:
            new[out_prefix + key] = why
        else:
            problems.append(Problem('missing', (out_prefix + key, ),
                                    f'{out_prefix}{key}: not in the checkpoint',
                                    ours=out_prefix + key))
    return written, new


def map_official_head(source: Dict[str, Tensor], dropped: Dict[str, str],
                      theirs: Dict[str, torch.Size]) -> Dict[str, Tuple[Tensor, str]]:
    """An official classifier ``head.*`` renamed to the target's one head of that shape.

    Official Swin / DeiT / STViT-R files name their linear classifier ``head``;
    mmpretrain heads nest it (``head.fc``, ``head.layers.head``). The keys
    renamed are taken out of ``dropped`` (the backbone converter drops heads).

    Args:
        source: the backbone-level source tensors (official files have no prefix).
        dropped: source key -> why the backbone converter left it out.
        theirs: the target model's non-backbone keys and shapes.

    Returns:
        {target key: (tensor, source key)}; empty when no single head fits.
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


def _task_shapes(target: Target) -> Dict[str, torch.Size]:
    """The target's non-backbone keys (neck, heads) and shapes."""
    return {k: v.shape for k, v in target.model.state_dict().items()
            if not k.startswith(BACKBONE_PREFIX)}


def carry_task_keys(task: Dict[str, Tuple[Tensor, str]], target: Target,
                    problems: List[Problem]
                    ) -> Tuple[Dict[str, Tensor], Dict[str, str], Dict[str, str], bool]:
    """Non-backbone tensors ({our name: (tensor, source key)}) against the target.

    Returns:
        (written, {source key: why dropped}, {our key: why new}, whether checked).
    """
    if not target.whole_model:
        return {k: v for k, (v, _) in task.items()}, {}, {}, False
    theirs = _task_shapes(target)
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


def settle(problems: List[Problem], ignore: Sequence[str], target_name: str) -> Dict[str, str]:
    """Problems matched by an ``ignore`` regex ({key: problem}); raise on the others."""
    patterns = []
    for pattern in ignore:
        try:
            patterns.append(re.compile(pattern))
        except re.error as error:
            raise ConversionError(
                f'--ignore {pattern!r} is not a valid regex: {error}') from error
    ignored, errors = {}, []
    for problem in problems:
        if any(p.search(name) for p in patterns for name in problem.names):
            ignored[problem.names[0]] = problem.text
        else:
            errors.append(problem)
    if errors:
        raise ConversionError(describe_errors(errors, target_name))
    return ignored


DETECTION_FORK_PLAN = 'detection-fork'


def is_official_detector(tensors: Dict[str, Tensor]) -> bool:
    """An official STViT-R COCO detector (changsn/STViT-R-Object-Detection): an official
    STViT-R-Swin backbone under ``backbone.`` plus mmdet's ``roi_head.*``."""
    backbone = {k[len(BACKBONE_PREFIX):] for k in tensors if k.startswith(BACKBONE_PREFIX)}
    return (any(k.startswith('roi_head.') for k in tensors)
            and detect_layout(dict.fromkeys(backbone), 'swin') == 'official-stvit-r')


def check_detection_plan(target: Target, allow_other_plan: bool) -> None:
    """Refuse an official detector's weights for a backbone of another plan: the same tensors
    fit both, but only the fork's plan computes the network they were trained in."""
    plan = getattr(target.backbone, 'unit_plan', None)
    if plan != DETECTION_FORK_PLAN and not allow_other_plan:
        raise ConversionError(
            f"the checkpoint is an official STViT-R detector, trained with the detection fork's "
            f"plan (unit_plan='{DETECTION_FORK_PLAN}'), and {target.name} has "
            f"unit_plan={plan!r}: build it with preset='official-det' (as "
            "configs/detection/cascade_mask_rcnn_stvit_r_swin_{s,b}_3x.py do), or pass "
            '--allow-other-plan to convert it anyway (it then computes another network)')


def convert_checkpoint(checkpoint: Dict[str, Tensor], source: str, target: Target,
                       ignore: Sequence[str] = (), allow_other_plan: bool = False) -> Result:
    """Convert a state dict in the ``source`` layout for ``target``; see the module docstring.

    The check at the end loads the result into ``target.model``, which then holds it.
    An official detector (:func:`is_official_detector`) converts only for a target of the
    detection fork's plan, unless ``allow_other_plan``.

    Raises:
        ConversionError: wrong layout, target or plan, or problems no ``ignore`` regex matches.
    """
    if source not in SOURCES:
        raise ConversionError(f'unknown --from {source!r}; choose one of {sorted(SOURCES)}')
    tensors = unwrap_checkpoint(checkpoint)
    backbone_sd, rest, src_prefix = _split_backbone(tensors)
    layout = _detect_layout(list(backbone_sd), source, target)
    if is_official_detector(tensors):
        check_detection_plan(target, allow_other_plan)
    conv = convert(backbone_sd, layout, target.backbone)
    if conv.plan_mismatch:  # blocks placed by index would land in layers of other roles
        raise ConversionError(f'cannot convert for {target.name}: the checkpoint has another '
                              f'sparsification plan than the target: {conv.plan_mismatch}; '
                              f'{PLAN_FIX}')
    for key, grid in target.backbone.state_dict().items():  # sources carry no plan record
        if key.endswith(PLAN_RECORDS):
            conv.put(key, grid.clone())
    out_prefix = BACKBONE_PREFIX if target.whole_model or src_prefix else ''
    ours = {k: v.shape for k, v in target.backbone.state_dict().items()}
    problems: List[Problem] = []
    written, new = _place_backbone(conv, ours, layout, src_prefix, out_prefix, problems)

    task = {k: (v, k) for k, v in rest.items()}
    if target.whole_model and not rest:
        task = map_official_head(backbone_sd, conv.dropped, _task_shapes(target))
    carried, task_dropped, task_new, checked = carry_task_keys(task, target, problems)
    ignored = settle(problems, ignore, target.name)
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
    verify_loads(result, target, problems)
    result.meta = dict(converted_by='tools/convert_checkpoint.py', source=source, layout=layout,
                       target=target.name, new=new, dropped=dropped, ignored=ignored)
    return result


def verify_loads(result: Result, target: Target, problems: List[Problem]) -> None:
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
