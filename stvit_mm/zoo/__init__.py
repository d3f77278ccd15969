"""The model zoo: OpenMMLab metafiles (``model-index.yml``, ``configs/*/metafile.yml``) read
and checked, their figures kept in step with the code, and ``docs/model_zoo.md`` rendered.

``tools/make_model_zoo.py`` is the command line over this package:
:mod:`.metafiles` (schema, configs on disk, inheritance), :mod:`.stock` (the stock model each
config is compared with, its accuracy from the installed packages' metafiles),
:mod:`.figures` (parameters and MACs, written into the metafiles), :mod:`.benchmarks`
(speed records in ``docs/benchmarks.json``) and :mod:`.page` (the Markdown page).
"""
