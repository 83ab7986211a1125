"""entrosum: EM and variational learning of latent-variable models, with the ELBO read as a sum of
entropies (posterior entropy − prior entropy − expected observable entropy)."""

from ._core import NumericalError, __version__
from .exceptions import ConvergenceWarning, NotFittedError
from .gaussian_mixture import GaussianMixture
from .linear_gaussian import PPCA, FactorAnalysis
from .monitor import ConvergenceMonitor

__all__ = [
    "PPCA",
    "ConvergenceMonitor",
    "ConvergenceWarning",
    "FactorAnalysis",
    "GaussianMixture",
    "NotFittedError",
    "NumericalError",
    "__version__",
]
