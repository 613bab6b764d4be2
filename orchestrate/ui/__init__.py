"""Rendering: the only layer that imports Rich. Pure functions of state, plus the live reporter."""
