"""Warnings and errors raised by entrosum estimators."""

from __future__ import annotations


class ConvergenceWarning(UserWarning):
    """A fit stopped at ``max_iter`` before its stopping rule was met."""


class ComponentRecoveryWarning(UserWarning):
    """A mixture component emptied or collapsed during a fit and was re-seeded at a worst-explained sample."""


class NotFittedError(ValueError, AttributeError):
    """A method that needs a fitted model was called before ``fit``."""
