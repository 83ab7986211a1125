"""entrosum: EM and variational learning of latent-variable models.

The ELBO is read as a sum of
entropies (posterior entropy − prior entropy − expected observable entropy).

The package is layered: ``engine`` (the fit driver and what it runs on), one subpackage per model family
(``mixtures``, ``linear``, ``sparse``), ``monitor``, ``io`` (model files) and ``cli``. Every public name is
importable from here.
"""

from ._core import NumericalError, __version__
from .exceptions import ComponentRecoveryWarning, ConvergenceWarning, NotFittedError
from .io import load
from .linear import PPCA, FactorAnalysis
from .mixtures import BernoulliMixture, GaussianMixture, PoissonMixture
from .monitor import ConvergenceMonitor
from .sparse import SparseCoding

__all__ = [
    "PPCA",
    "BernoulliMixture",
    "ComponentRecoveryWarning",
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
