"""entrosum: EM and variational learning of latent-variable models.

The ELBO is read as a sum of
entropies (posterior entropy − prior entropy − expected observable entropy).
"""

from ._core import NumericalError, __version__
from .bernoulli_mixture import BernoulliMixture
from .exceptions import ConvergenceWarning, NotFittedError
from .gaussian_mixture import GaussianMixture
from .linear_gaussian import PPCA, FactorAnalysis
from .model_io import load
from .monitor import ConvergenceMonitor
from .poisson_mixture import PoissonMixture
from .sparse_coding import SparseCoding

__all__ = [
    "PPCA",
    "BernoulliMixture",
    "ConvergenceMonitor",
    "ConvergenceWarning",
    "FactorAnalysis",
    "GaussianMixture",
    "NotFittedError",
    "NumericalError",
    "PoissonMixture",
    "SparseCoding",
    "__version__",
    "load",
]
