"""Annotation files named when they are missing or damaged.

A run reads its annotation files (``ann_file`` of the datasets, of evaluators such as
CocoMetric) once, when the Runner builds them. A missing one is named before anything is
built (:func:`missing_annotation_files`); a damaged JSON file makes pycocotools / mmengine
raise ``json.JSONDecodeError`` without a file name, so :func:`name_damaged_annotation`
finds the file that fails to parse, after the error (the files are parsed again only then).
"""
import json
import os.path as osp
from typing import Iterator, List, Optional, Sequence, Tuple


def _datasets(node) -> Iterator[dict]:
    """A dataloader's dataset dict and those inside wrappers (dataset / datasets keys)."""
    if isinstance(node, dict):
        yield node
        yield from _datasets(node.get('dataset'))
        for inner in node.get('datasets') or []:
            yield from _datasets(inner)


def annotation_files(cfg, splits: Sequence[str]) -> List[Tuple[str, str]]:
    """``(where, path)`` for every annotation file the splits' datasets and evaluators name
    (dataset paths joined with ``data_root``, as mmengine's BaseDataset does)."""
    found = []
    for split in splits:
        loader = cfg.get(f'{split}_dataloader') or {}
        for dataset in _datasets(loader.get('dataset')):
            ann_file, root = dataset.get('ann_file'), dataset.get('data_root')
            if isinstance(ann_file, str) and ann_file:
                if root and not osp.isabs(ann_file):
                    ann_file = osp.join(root, ann_file)
                found.append((f'{split}_dataloader', ann_file))
        evaluators = cfg.get(f'{split}_evaluator') or []
        for evaluator in evaluators if isinstance(evaluators, (list, tuple)) else [evaluators]:
            ann_file = evaluator.get('ann_file') if isinstance(evaluator, dict) else None
            if isinstance(ann_file, str) and ann_file:
                found.append((f'{split}_evaluator', ann_file))
    return found


def missing_annotation_files(cfg, splits: Sequence[str]) -> List[str]:
    """``'where: ann_file PATH'`` for each annotation file that does not exist."""
    return [f'{where}: ann_file {path}' for where, path in annotation_files(cfg, splits)
            if '://' not in path and not osp.isfile(path)]


def check_annotation_files(cfg, splits: Sequence[str]) -> None:
    """FileNotFoundError in one line naming every missing annotation file of the splits."""
    missing = missing_annotation_files(cfg, splits)
    if missing:
        raise FileNotFoundError(f'annotation file does not exist ({"; ".join(missing)}); '
                                'restore it or set the path with --cfg-options')


def name_damaged_annotation(cfg, splits: Sequence[str]) -> Optional[str]:
    """One line naming the JSON annotation file that fails to parse, or None when none of
    the config's files does (the error came from elsewhere)."""
    for where, path in annotation_files(cfg, splits):
        if not path.endswith('.json') or not osp.isfile(path):
            continue
        try:
            with open(path, 'rb') as f:
                json.load(f)
        except (ValueError, UnicodeDecodeError) as err:
            reason = ' '.join(str(err).split())
            return (f'annotation file {path} ({where}) is not valid JSON ({reason}); it is '
                    'damaged or was cut short: restore or regenerate it')
    return None
