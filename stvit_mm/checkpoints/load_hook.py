"""The one load pre-hook of every backbone: foreign checkpoints converted on every loading path.

A pre-hook runs inside ``_load_from_state_dict``, so ``init_cfg`` Pretrained,
``load_checkpoint``, ``load_from``/resume and ``load_state_dict`` all convert
Swin / DeiT / official STViT-R-Swin checkpoints (:func:`.layouts.convert`),
refuse another sparsification plan, and leave a report in ``last_load_report``.
:func:`.plans.check_checkpoint_fits` runs after it, on our names.

The classifier head is not mapped here, and cannot be: a backbone's hook sees
the keys under its own prefix only (torch hands a child the keys that start
with ``backbone.``), and an official file (a bare backbone plus ``head``) has
no ``backbone.`` keys. Whole official classifiers are converted one level up,
by the same :func:`~stvit_mm.checkpoints.whole_checkpoint.convert_checkpoint`:
``load_from`` through :class:`stvit_mm.engine.ForeignCheckpointHook` (our
classification configs add it), models built in Python through
:func:`stvit_mm.checkpoints.whole_model.load_foreign_checkpoint`, files
through ``tools/convert_checkpoint.py --config CLASSIFIER_CONFIG``.
"""
from typing import Dict, Optional

from mmengine.logging import print_log

from .conversion import Conversion, unwrap_release_file
from .layouts import convert, detect_layout
from .plans import PLAN_RECORDS, raise_plan_mismatch, register_checkpoint_check
from .report import summarise_reasons
from .safe_loading import use_safe_checkpoint_loading


class ConvertsForeignCheckpoints:
    """Mixin for our backbones (nn.Modules): the shared converting load pre-hook.

    Subclasses set ``checkpoint_family`` ('swin' or 'deit': the layouts they
    convert), call :meth:`_install_checkpoint_hooks` at the end of ``__init__``
    and may override :meth:`_fit_to_model` (resize, inflate) and
    :meth:`_load_report`.

    Attributes:
        last_load_report: after a load of a foreign checkpoint: its ``layout``,
            ``not_loaded`` (source key -> why), ``loaded`` and ``missing``
            (our keys); None after a load of our own layout.
    """
    checkpoint_family: str = 'swin'

    def _install_checkpoint_hooks(self) -> None:
        """Register the converting pre-hook, then the fit check (hooks run in that order)."""
        self.last_load_report: Optional[dict] = None
        self._register_load_state_dict_pre_hook(self._convert_foreign_checkpoint)
        register_checkpoint_check(self)

    def init_weights(self) -> None:
        """Read ``init_cfg`` checkpoints with the safe loader: a backbone built in a user's own
        script (no entry point of ours, no ``stvit_mm.engine``) must not run pickled code
        either. The one place a model installs it (tests/test_safe_checkpoint.py)."""
        use_safe_checkpoint_loading()
        super().init_weights()

    def _fit_to_model(self, conv: Conversion, layout: Optional[str]) -> Dict[str, str]:
        """Adapt ``conv.tensors`` to this model in place (e.g. resize position embeddings).

        ``layout`` is None for a checkpoint in our own layout. Returns {our key:
        how} of adaptations that make the load a conversion worth a report
        (inflating 2-D weights); silent fixes return nothing.
        """
        return {}

    def _load_report(self, layout: Optional[str], conv: Conversion,
                     adapted: Dict[str, str]) -> dict:
        return dict(layout=layout or 'stvit', not_loaded=conv.not_loaded,
                    loaded=sorted(conv.tensors),
                    missing=sorted(set(self.state_dict()) - set(conv.tensors)))

    def _convert_foreign_checkpoint(self, state_dict: dict, prefix: str, *args) -> None:
        """Load pre-hook: convert the checkpoint under ``prefix`` to our names in place."""
        owner = type(self).__name__
        self.last_load_report = None
        unwrap_release_file(state_dict, prefix)
        own = {k[len(prefix):]: k for k in state_dict if k.startswith(prefix)}
        if not own:
            return
        source = {k: state_dict[full] for k, full in own.items()}
        layout = detect_layout(source, self.checkpoint_family)
        if layout is None:  # our own layout: every tensor as it is
            conv = Conversion(tensors=dict(source))
        else:
            conv = convert(source, layout, self)
            if conv.plan_mismatch:
                raise_plan_mismatch(owner, conv.plan_mismatch)
            for key, grid in self.state_dict().items():  # sources have no plan records
                if key.endswith(PLAN_RECORDS) and key not in conv.tensors:
                    conv.put(key, grid.clone())
        adapted = self._fit_to_model(conv, layout)
        if layout is None and not adapted:
            state_dict.update({prefix + k: v for k, v in conv.tensors.items()})
            return
        for key in own.values():
            del state_dict[key]
        state_dict.update({prefix + k: v for k, v in conv.tensors.items()})
        self.last_load_report = report = self._load_report(layout, conv, adapted)
        detail = f'; {len(adapted)} adapted: {", ".join(sorted(adapted))}' if adapted else ''
        print_log(f'{owner}: converted a {report["layout"]}-layout checkpoint ({len(source)} '
                  f'tensors -> {len(conv.tensors)}{detail}); missing (kept initialised): '
                  f'{", ".join(report["missing"]) or "none"}; not loaded: '
                  f'{summarise_reasons(conv.not_loaded, examples=1)}', logger='current')
