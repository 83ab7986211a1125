"""Sparse coding: Laplace sources with Gaussian posteriors, learned through the entropy-sum ELBO."""

from .sparse_coding import SparseCoding

__all__ = ["SparseCoding"]
