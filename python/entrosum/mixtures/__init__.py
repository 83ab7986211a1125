"""Mixture models: Gaussian, Bernoulli, Poisson, binomial, exponential, gamma and mixed (a family per column)."""

from .bernoulli import BernoulliMixture
from .binomial import BinomialMixture
from .exponential import ExponentialMixture
from .gamma import GammaMixture
from .gaussian import GaussianMixture
from .mixed import MixedMixture
from .poisson import PoissonMixture

__all__ = ["BernoulliMixture", "BinomialMixture", "ExponentialMixture", "GammaMixture", "GaussianMixture",
           "MixedMixture", "PoissonMixture"]
