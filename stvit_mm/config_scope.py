"""The ``stvit_mm::`` config scope: ``_base_ = 'stvit_mm::detection/<config>.py'``.

mmengine resolves ``pkg::rel`` in a config by looking ``pkg`` up in
``mmengine.config.utils.MODULE2PACKAGE`` and reading ``<package dir>/.mim/configs/rel``
(and ``.mim/model-index.yml``), with the package dir from
``mmengine.utils.get_installed_path``. :func:`register_config_scope` adds our name to that
table; ``import stvit_mm`` calls it, so it must run before a config naming ``stvit_mm::`` is
parsed (a ``custom_imports`` inside that config is too late: bases resolve first).

The table's value is this module's dotted name, not the distribution name ``stvit-mm``:
``get_installed_path`` asks pkg_resources first, and for a PEP 660 editable install
(``make install``) pkg_resources places the package in site-packages, where it is not. No
distribution is called ``stvit_mm.config_scope``, so mmengine falls back to
``importlib.util.find_spec``, whose origin is this file: its folder is the real package
folder for editable, wheel and PYTHONPATH installs alike. ``stvit_mm/.mim`` holds symlinks to
the repository's ``configs/`` and ``model-index.yml`` (copied into wheels as package data).
"""
SCOPE = 'stvit_mm'
PACKAGE_LOOKUP = __name__  # 'stvit_mm.config_scope': its folder is the package folder


def register_config_scope() -> None:
    """Make ``stvit_mm::<folder>/<config>.py`` resolvable by mmengine's Config."""
    from mmengine.config.utils import MODULE2PACKAGE
    MODULE2PACKAGE.setdefault(SCOPE, PACKAGE_LOOKUP)
