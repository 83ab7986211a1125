"""Model files (``model_io``: save and load, docs/model_format.md) and the registry of model families."""

from .model_io import load

__all__ = ["load"]
