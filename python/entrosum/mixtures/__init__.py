"""Mixture models: Gaussian (six covariance types), Bernoulli, Poisson, binomial, exponential, gamma, multinomial."""

from .bernoulli import BernoulliMixture
from .binomial import BinomialMixture
from .exponential import ExponentialMixture
from .gamma import GammaMixture
from .gaussian import GaussianMixture
from .multinomial import MultinomialMixture
from .poisson import PoissonMixture

__all__ = ["BernoulliMixture", "BinomialMixture", "ExponentialMixture", "GammaMixture", "GaussianMixture",
           "MultinomialMixture", "PoissonMixture"]
