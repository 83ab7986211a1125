"""Warnings and errors raised by entrosum estimators: scikit-learn's own classes when it is installed.

``entrosum.NotFittedError`` and ``entrosum.ConvergenceWarning`` are ``sklearn.exceptions.NotFittedError`` and
``sklearn.exceptions.ConvergenceWarning`` whenever scikit-learn can be imported, so that code written for
scikit-learn (``except NotFittedError``, ``warnings.filterwarnings("ignore", category=ConvergenceWarning)``,
``pytest.warns``) handles entrosum's as well. Without scikit-learn (numpy is entrosum's only requirement) they are
entrosum's own classes, with the same bases as scikit-learn's: ``ValueError`` and ``AttributeError``, and
``UserWarning``.

scikit-learn is imported when one of them is first needed (an error or warning raised, or the name looked up),
not by ``import entrosum``: importing scikit-learn takes about a second.
"""

from __future__ import annotations

import functools
from typing import Any


class ComponentRecoveryWarning(UserWarning):
    """A mixture component emptied or collapsed during a fit and was re-seeded at a worst-explained sample."""


class EntrosumNotFittedError(ValueError, AttributeError):
    """A method that needs a fitted model was called before ``fit`` (used when scikit-learn is not installed)."""


class EntrosumConvergenceWarning(UserWarning):
    """A fit stopped before its stopping rule was met (used when scikit-learn is not installed)."""


@functools.cache
def _classes() -> tuple[type[Exception], type[Warning]]:
    try:
        from sklearn.exceptions import ConvergenceWarning, NotFittedError
    except ImportError:
        return EntrosumNotFittedError, EntrosumConvergenceWarning
    return NotFittedError, ConvergenceWarning


def not_fitted_error() -> type[Exception]:
    """Return the class raised for a model used before ``fit``: scikit-learn's ``NotFittedError`` if installed."""
    return _classes()[0]


def convergence_warning() -> type[Warning]:
    """Return the class of the warning for a fit that did not converge: scikit-learn's if installed."""
    return _classes()[1]


def __getattr__(name: str) -> Any:
    """Resolve ``NotFittedError`` and ``ConvergenceWarning`` on first use (PEP 562)."""
    if name == "NotFittedError":
        return not_fitted_error()
    if name == "ConvergenceWarning":
        return convergence_warning()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
