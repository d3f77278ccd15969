from .config import load_config, resolve_config_path

__all__ = ['load_config', 'resolve_config_path']
