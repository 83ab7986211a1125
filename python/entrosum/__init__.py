"""entrosum: EM and variational learning of latent-variable models.

The ELBO is read as a sum of
entropies (posterior entropy − prior entropy − expected observable entropy).

The package is layered: ``engine`` (the fit driver and what it runs on), one subpackage per model family
(``mixtures``, ``linear``, ``sparse``, ``binary``, ``vae``), ``monitor``, ``io`` (model files) and ``cli``. Every
public name is importable from here; ``entrosum.vae`` holds the VAE entropy sums on numpy arrays and ``entrosum.torch``
(optional, imports torch on use) the PyTorch training monitor.
"""

from typing import TYPE_CHECKING, Any

from ._core import NumericalError, __version__
from .binary import BinarySparseCoding, SigmoidBeliefNet
from .exceptions import ComponentRecoveryWarning
from .io import load
from .linear import PPCA, FactorAnalysis
from .mixtures import (
    BernoulliMixture,
    BinomialMixture,
    CategoricalMixture,
    ExponentialMixture,
    GammaMixture,
    GaussianMixture,
    MixedMixture,
    MultinomialMixture,
    PoissonMixture,
)
from .monitor import ConvergenceMonitor
from .sparse import SparseCoding
from .vae import LinearVAE

if TYPE_CHECKING:  # resolved on first use by __getattr__ below: scikit-learn's classes when it is installed
    from .exceptions import ConvergenceWarning, NotFittedError

__all__ = [
    "PPCA",
    "BernoulliMixture",
    "BinarySparseCoding",
    "BinomialMixture",
    "CategoricalMixture",
    "ComponentRecoveryWarning",
    "ConvergenceMonitor",
    "ConvergenceWarning",
    "ExponentialMixture",
    "FactorAnalysis",
    "GammaMixture",
    "GaussianMixture",
    "MixedMixture",
    "LinearVAE",
    "MultinomialMixture",
    "NotFittedError",
    "NumericalError",
    "PoissonMixture",
    "SigmoidBeliefNet",
    "SparseCoding",
    "__version__",
    "load",
]


def __getattr__(name: str) -> Any:
    """Resolve ``NotFittedError`` and ``ConvergenceWarning`` on first use (``entrosum.exceptions``)."""
    if name in ("NotFittedError", "ConvergenceWarning"):
        from . import exceptions

        return getattr(exceptions, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
