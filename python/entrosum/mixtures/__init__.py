"""Mixture models: Gaussian (four covariance types), Bernoulli and Poisson, with their shared initialisations."""

from .bernoulli import BernoulliMixture
from .gaussian import GaussianMixture
from .poisson import PoissonMixture

__all__ = ["BernoulliMixture", "GaussianMixture", "PoissonMixture"]
