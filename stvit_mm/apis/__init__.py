"""What tools/train.py and tools/test.py run, for scripts: build the run's config, then
train or evaluate with mmengine's Runner."""
from .evaluate import enable_visualization, evaluate, evaluate_from_args, evaluation_config
from .train import train, train_config, train_from_args

__all__ = ['enable_visualization', 'evaluate', 'evaluate_from_args', 'evaluation_config',
           'train', 'train_config', 'train_from_args']
