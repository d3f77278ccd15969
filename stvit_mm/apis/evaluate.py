"""Evaluation of a checkpoint with a config's test dataloader and evaluator, as
tools/test.py runs it."""
import argparse
import os.path as osp
from typing import Optional

from mmengine.config import Config

from ..checkpoints.atomic_save import use_atomic_saving
from ..checkpoints.safe_loading import use_safe_checkpoint_loading
from ..datasets.annotation_errors import check_annotation_files
from ..datasets.image_errors import name_unreadable_images
from ..utils.config import check_data_paths, load_config
from .run_errors import exit_on_run_errors
from .train import default_work_dir


def enable_visualization(cfg: Config, show_dir: str) -> None:
    """Switch on the codebase's visualisation hook (its option names differ)."""
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise ValueError('--show-dir: the config has no default_hooks.visualization')
    if hook['type'] == 'VisualizationHook' and 'enable' in hook:  # mmpretrain
        hook.update(enable=True, out_dir=show_dir)
    elif hook['type'].rsplit('.', 1)[-1] == 'SegVisualizationHook':
        # mmseg's hook has no output folder (test_out_dir is a TypeError): it draws every
        # `interval`-th image into the visualizer's save_dir (vis_data/vis_image/ there).
        hook.update(draw=True, interval=1)
        # A named visualizer is one per process (mmengine's ManagerMixin): under the stock
        # name, a run after another one in the same process would draw into the first one's
        # save_dir. One name per show dir.
        cfg.visualizer.update(save_dir=show_dir, name=f'show_dir:{osp.abspath(show_dir)}')
    else:  # mmdet DetVisualizationHook, mmaction VisualizationHook
        hook.update(draw=True, test_out_dir=show_dir)


def evaluation_config(config: str, checkpoint: str, cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None, show_dir: Optional[str] = None,
                out: Optional[str] = None) -> Config:
    """The config a test run uses: loaded and checked, ``checkpoint`` as ``load_from``,
    no training parts, drawings in ``show_dir``, predictions dumped to ``out`` (.pkl),
    unreadable images named; ValueError or FileNotFoundError in one line."""
    cfg = load_config(config, cfg_options)
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    cfg.load_from = checkpoint
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = default_work_dir(config)
    # Testing needs no training data. Without this, mmseg's visualisation hook (it reads
    # runner.iter) builds the training loop, whose dataset must then exist.
    cfg.train_dataloader = cfg.train_cfg = cfg.optim_wrapper = cfg.param_scheduler = None
    if show_dir:
        enable_visualization(cfg, show_dir)
    if out:
        if not out.endswith(('.pkl', '.pickle')):
            raise ValueError('--out must end with .pkl or .pickle')
        evaluators = cfg.test_evaluator
        evaluators = list(evaluators) if isinstance(evaluators, (list, tuple)) else [evaluators]
        evaluators.append(dict(type='DumpResults', out_file_path=out))
        cfg.test_evaluator = evaluators
    name_unreadable_images(cfg, ('test', ))  # a corrupt image names the file and the fix
    check_data_paths(cfg, ('test', ))
    check_annotation_files(cfg, ('test', ))
    return cfg


def evaluate(cfg: Config, launcher: str = 'none') -> dict:
    """Run mmengine's test loop under ``launcher``; the metrics. The checkpoint is read
    without running pickled code and checked whole; --out files are saved atomically."""
    from mmengine.runner import Runner

    from ..utils.dist import launched

    use_safe_checkpoint_loading()
    use_atomic_saving()
    with launched(cfg, launcher):
        return Runner.from_cfg(cfg).test()


def evaluate_from_args(args: argparse.Namespace) -> dict:
    """tools/test.py after parsing: a bad config, path or checkpoint, an unreadable image
    or annotation file exits with one line ``error: ...``; the metrics otherwise."""
    try:
        cfg = evaluation_config(args.config, args.checkpoint, args.cfg_options, args.work_dir,
                          args.show_dir, args.out)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f'error: {err}') from err
    with exit_on_run_errors(cfg, ('test', )):
        return evaluate(cfg, args.launcher)
