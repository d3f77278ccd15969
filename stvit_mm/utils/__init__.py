"""Config and model loading shared by the tools, the analysis and the tests."""
from .config import ConfigError, ConfigNotFoundError, load_config, resolve_config_path
from .model_builder import build_model, load_weights, model_kind

__all__ = ['ConfigError', 'ConfigNotFoundError', 'build_model', 'load_config', 'load_weights',
           'model_kind', 'resolve_config_path']
