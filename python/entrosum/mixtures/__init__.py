"""Mixture models: Gaussian (four covariance types), Bernoulli, Poisson, binomial and exponential."""

from .bernoulli import BernoulliMixture
from .binomial import BinomialMixture
from .exponential import ExponentialMixture
from .gaussian import GaussianMixture
from .poisson import PoissonMixture

__all__ = ["BernoulliMixture", "BinomialMixture", "ExponentialMixture", "GaussianMixture", "PoissonMixture"]
