"""Mixture models: Gaussian (four covariance types), Bernoulli, Poisson, binomial, exponential and gamma."""

from .bernoulli import BernoulliMixture
from .binomial import BinomialMixture
from .exponential import ExponentialMixture
from .gamma import GammaMixture
from .gaussian import GaussianMixture
from .poisson import PoissonMixture

__all__ = ["BernoulliMixture", "BinomialMixture", "ExponentialMixture", "GammaMixture", "GaussianMixture",
           "PoissonMixture"]
