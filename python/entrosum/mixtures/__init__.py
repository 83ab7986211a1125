"""Mixture models: Gaussian, Bernoulli, Poisson, binomial, exponential, gamma, multinomial, categorical, mixed."""

from .bernoulli import BernoulliMixture
from .binomial import BinomialMixture
from .categorical import CategoricalMixture
from .exponential import ExponentialMixture
from .gamma import GammaMixture
from .gaussian import GaussianMixture
from .mixed import MixedMixture
from .multinomial import MultinomialMixture
from .poisson import PoissonMixture

__all__ = ["BernoulliMixture", "BinomialMixture", "CategoricalMixture", "ExponentialMixture", "GammaMixture",
           "GaussianMixture", "MixedMixture", "MultinomialMixture", "PoissonMixture"]
