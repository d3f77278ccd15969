"""Checkpoint layout converters (pure functions on state dicts)."""
from .deit import DEIT_LAYOUTS, deit_to_stvit, detect_deit_layout

__all__ = ['DEIT_LAYOUTS', 'deit_to_stvit', 'detect_deit_layout']
