"""The convergence monitor every model shares (``convergence``) and its progress display (``progress``)."""

from .convergence import FIELDS, ConvergenceMonitor

__all__ = ["FIELDS", "ConvergenceMonitor"]
