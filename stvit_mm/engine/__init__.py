"""Runner extensions (hooks) registered in mmengine's root registry."""
from .random_state import RandomStateHook

__all__ = ['RandomStateHook']
