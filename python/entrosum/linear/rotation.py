"""Orthogonal rotations of factor loadings: the orthomax family (varimax, quartimax).

Factor analysis determines the loadings Λ (n_features, n_components) only up to an orthogonal rotation R: ΛR
gives the same model covariance ΛΛᵀ + Ψ. An orthomax rotation picks the R that maximises

    Q(ΛR) = Σ_j Σ_i L_ij⁴ − (γ / p) Σ_j (Σ_i L_ij²)²,   L = ΛR, p = n_features,

the variance of the squared loadings within each factor (γ = 1, varimax; Kaiser 1958) or their fourth moment
(γ = 0, quartimax; Carroll 1953, Neuhaus & Wrigley 1954): loadings pushed towards 0 or large, so that each
factor is explained by few features. Harman (1976) and Jennrich (2001) give the iteration used here: with
G = Λᵀ (L³ − (γ/p) L diag(Σ_i L_ij²)), the gradient of Q/4 at R, the next R is the orthogonal polar factor U Vᵀ of
G = U S Vᵀ; the sum of the singular values of G, which is non-decreasing, measures convergence. Loadings are
rotated as they are (no Kaiser row normalisation), as scikit-learn's ``FactorAnalysis(rotation=...)`` does.
"""

from __future__ import annotations

import numpy as np

#: γ of each named member of the orthomax family.
ORTHOMAX_GAMMA = {"varimax": 1.0, "quartimax": 0.0}


def orthomax_rotation(loadings: np.ndarray, method: str, *, tol: float = 1e-6, max_iter: int = 100) -> np.ndarray:
    """Return the orthogonal matrix R (n_components, n_components) that rotates ``loadings`` by ``method``.

    Parameters
    ----------
    loadings : ndarray of shape (n_features, n_components)
        Λ, one column per factor.
    method : {'varimax', 'quartimax'}
        The member of the orthomax family.
    tol : float
        Stop when the criterion's measure grows by a relative amount below ``tol``.
    max_iter : int
        Most iterations.

    Returns
    -------
    ndarray of shape (n_components, n_components)
        R, with ``loadings @ R`` the rotated loadings.
    """
    gamma = ORTHOMAX_GAMMA[method]
    loadings = np.asarray(loadings, dtype=np.float64)
    n_features, n_components = loadings.shape
    rotation = np.eye(n_components)
    if n_components < 2:
        return rotation  # nothing to rotate
    previous = 0.0
    for _ in range(max_iter):
        rotated = loadings @ rotation  # (n_features, n_components)
        column_sums = np.sum(rotated**2, axis=0)  # Σ_i L_ij² per factor
        gradient = loadings.T @ (rotated**3 - (gamma / n_features) * rotated * column_sums)
        left, singular_values, right = np.linalg.svd(gradient)
        rotation = left @ right  # the orthogonal polar factor of the gradient
        current = float(np.sum(singular_values))
        if current <= previous * (1.0 + tol):
            break
        previous = current
    return rotation
