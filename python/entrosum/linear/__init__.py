"""Linear Gaussian latent models: probabilistic PCA and factor analysis."""

from .factor_analysis import FactorAnalysis
from .ppca import PPCA

__all__ = ["PPCA", "FactorAnalysis"]
