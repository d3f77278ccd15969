"""Named settings of STViTSwin, defined once: ``STViTSwin(..., preset='official')``.

``'official'`` is how the official STViT-R-Swin classifiers (changsn/STViT-R)
compute, so their release files load and compute as trained:

- ``stem='conv'``: two 3x3 stride-2 conv+BN layers instead of Swin's 4x4 patch conv;
- ``gen_shortcut=False``: no attention residual in generator layer 1;
- ``global_centres=False``: no global centres G;
- ``layer2_scope='global'``, ``recovery_scope='global'``: generator layer 2 and the
  recovery attend to all tokens (fine at 224x224: a 14x14 stage-3 grid);
- ``neighbourhood_inside=True``: the official border handling of the 10x10 neighbourhoods;
- ``fit_window=True``: a map no larger than the window is one unshifted window
  (official Swin and mmpretrain: the 7x7 stage-4 map is not shifted).

``'official-det'`` is how the authors' COCO detectors (changsn/STViT-R-Object-Detection,
an mmdet 2.11 fork) compute: the conv stem, ``unit_plan='detection-fork'`` (its own
neighbourhoods, attention residuals, pad mask; ``layers/fork_unit.py``) and
``window_padding='zeros'`` (zero padding attended in every window block, as mmdet's Swin),
Swin's shifts on every odd block (``fit_window=False``).

Arguments a caller passes explicitly win over the preset (``preset='official',
stem='patch'`` keeps Swin's stem, so ImageNet Swin weights initialise every layer):
a preset is a starting point, and configs state their deviations next to it.
"""
from typing import Dict, Optional

SWIN_PRESETS: Dict[str, Dict[str, object]] = {
    'official': dict(stem='conv', gen_shortcut=False, global_centres=False,
                     layer2_scope='global', recovery_scope='global',
                     neighbourhood_inside=True, fit_window=True),
    'official-det': dict(stem='conv', gen_shortcut=True, global_centres=False, fit_window=False,
                         window_padding='zeros', unit_plan='detection-fork'),
}
OFFICIAL_PRESET = SWIN_PRESETS['official']

# The defaults of the switches a preset may set (None: decided later from other arguments).
SWIN_SWITCH_DEFAULTS: Dict[str, object] = dict(
    stem='patch', gen_shortcut=True, global_centres=True, layer2_scope='local',
    recovery_scope='local', neighbourhood_inside=False, fit_window=None,
    window_padding='masked', unit_plan='windowed')


def resolve_switches(owner: str, preset: Optional[str], given: Dict[str, object]) -> dict:
    """The switches: each explicitly given value (not None), else the preset's, else the default.

    Args:
        owner: class name that starts an error message.
        preset: a name of :data:`SWIN_PRESETS`, or None.
        given: switch -> the value passed (None where not passed).
    """
    if preset is not None and preset not in SWIN_PRESETS:
        raise ValueError(f'{owner}: unknown preset {preset!r}; choose one of '
                         f'{sorted(SWIN_PRESETS)} or None')
    chosen = SWIN_PRESETS.get(preset, {})
    return {name: given[name] if given.get(name) is not None else chosen.get(name, default)
            for name, default in SWIN_SWITCH_DEFAULTS.items()}
