"""Binomial mixtures for counts out of a known number of trials (DESIGN.md "Second-wave models").

p(x | k) = Π_d C(n_d, x_d) p_kd^x_d (1 − p_kd)^(n_d − x_d), with n_d known per feature.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _core
from ..engine.docs import shared_docstring
from ..engine.driver import Passes
from .discrete import DiscreteMixture

#: The largest number of trials: every whole number up to it is a float64.
MAX_TRIALS = 2.0**53


@shared_docstring
class BinomialMixture(DiscreteMixture):
    """A mixture of products of binomial distributions with known numbers of trials, fitted by EM.

    The ELBO and its entropy sum are monitored per iteration.

    The binomial base measure C(n, x) is not constant, so the entropy sum uses the pseudo-entropy n H_B(p)
    and a data term: S = H̄[r] − H[π] − Σ_k π̄_k Σ_d n_d H_B(p_kd) + (1/N) Σ_n Σ_d log C(n_d, x_nd)
    (``monitor_.history['data_term']``). After every M-step it equals the ELBO, and at convergence both
    equal the mean log-likelihood.

    Parameters
    ----------
    n_components : int
        Number of components K.
    n_trials : int or array-like of shape (n_features,)
        The known number of trials n_d ≥ 1 of each feature (one number for all).
    %(stopping)s
    %(mixture_starts)s
    weights_init, means_init : array-like, optional
        Initial weights (K,) and mean counts (K, D) in [0, n_d]; they replace the corresponding values from
        ``init_params``.
    %(warm_start)s
    %(execution)s

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
        Mean counts m_kd = E[x_d | k] = n_d p_kd.
    n_trials_ : ndarray of shape (n_features,)
        The numbers of trials the model was fitted with (float64).
    %(mixture_fitted)s

    The data must be counts x_d in {0, 1, ..., n_d} (any numeric dtype; float32 stays float32).
    """

    n_trials: Any  # the parameter, declared for type checkers (``__init__`` sets it)
    n_trials_: np.ndarray

    # Counts: scikit-learn's checks then give it non-negative integers.
    _input_tags = {"positive_only": True, "categorical": True}
    _core_prefix = "binomial_mixture"
    _means_range = {"minimum": 0.0}
    _data_requirement = "counts (whole numbers from 0 to n_trials of the column)"
    _fitted_names = ("weights_", "means_", "n_trials_")

    def __init__(self, n_components: int = 1, n_trials: Any = 1, *, tol: float | None = 1e-3,
                 gap_tol: float | None = None, max_iter: int = 100, n_init: int = 1, init_params: str = "kmeans",
                 weights_init: Any = None, means_init: Any = None, warm_start: bool = False,
                 random_state: Any = None, verbose: int = 0, n_jobs: int | None = None,
                 chunk_size: int | None = None, learning_offset: float = 10.0, learning_decay: float = 0.7) -> None:
        self._store_params(locals())

    # -- the numbers of trials ---------------------------------------------------------------------
    def _resolve_n_trials(self, n_features: int) -> np.ndarray:
        """Return ``n_trials`` as (n_features,) float64, checked: whole numbers in [1, 2^53]."""
        given = self.n_trials
        if isinstance(given, (bool, np.bool_)) or not (np.isscalar(given) or isinstance(given, (list, tuple,
                                                                                                 np.ndarray))):
            raise ValueError(f"n_trials must be a whole number or an array of one per feature, got {given!r}.")
        try:
            values = np.asarray(given, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(f"n_trials must hold numbers, got {given!r}.") from error
        if values.ndim == 0:
            values = np.full(n_features, float(values))
        if values.shape != (n_features,):
            raise ValueError(f"n_trials must be one number or hold one per feature: shape ({n_features},), got "
                             f"{values.shape}.")
        bad = ~(np.isfinite(values) & (values >= 1) & (values <= MAX_TRIALS) & (values == np.floor(values)))
        if np.any(bad):
            column = int(np.flatnonzero(bad)[0])
            raise ValueError(f"n_trials must be whole numbers of trials in [1, 2^53]; column {column} has "
                             f"{values[column]:g}.")
        return values

    def _data_n_trials(self, n_features: int) -> np.ndarray:
        """Return the numbers of trials the data are checked against: the fitted ones outside a fit."""
        if hasattr(self, "n_trials_") and not getattr(self, "_fitting", False):
            return np.asarray(self.n_trials_, dtype=np.float64)
        return self._resolve_n_trials(n_features)

    def _fit_data(self, X: Any, sample_weight: Any, names: np.ndarray | None = None) -> Any:
        # a (re)fit checks its data against the n_trials parameter, not a previous fit's n_trials_
        self._fitting = True
        try:
            return super()._fit_data(X, sample_weight, names)
        finally:
            self._fitting = False

    def _check_values(self, X: np.ndarray, n_threads: int) -> None:
        n_trials = self._data_n_trials(X.shape[1])
        row = _core.first_non_binomial_row(X, n_trials, n_threads)
        if row < 0:
            return
        values = X[row].astype(np.float64)
        column = int(np.flatnonzero(~((values >= 0) & (values <= n_trials) & (values == np.floor(values))))[0])
        if values[column] < 0:  # scikit-learn's wording, which its checks of non-negative models match
            raise ValueError(f"Negative values in data passed to BinomialMixture: X must be {self._data_requirement} "
                             f"for BinomialMixture; row {row} holds {values[column]:g} in column {column}.")
        raise ValueError(f"X must be {self._data_requirement} for BinomialMixture; row {row} holds "
                         f"{values[column]:g} in column {column}, which has {n_trials[column]:g} trials.")

    def _check_family_settings(self, X: np.ndarray) -> None:
        self._fit_n_trials = self._resolve_n_trials(X.shape[1])
        super()._check_family_settings(X)

    def _online_resume(self, X: np.ndarray) -> tuple[Any, dict]:
        self._check_fitted_params()
        self._fit_n_trials = np.asarray(self.n_trials_, dtype=np.float64)
        return self._steps(), self._current_params()

    def _check_means_init(self, means: np.ndarray) -> None:
        n_trials = self._resolve_n_trials(means.shape[1])
        if np.any(means < 0) or np.any(means > n_trials):
            raise ValueError("means_init must hold mean counts in [0, n_trials] for BinomialMixture; found values "
                             f"in [{means.min():.6g}, {means.max():.6g}].")

    def _check_family_params(self, n_features: int) -> None:
        super()._check_family_params(n_features)
        n_trials = self._fitted_array("n_trials_", (n_features,), why="n_features_in_", minimum=1.0,
                                      maximum=MAX_TRIALS)
        if np.any(n_trials != np.floor(n_trials)):
            raise ValueError("BinomialMixture.n_trials_ must hold whole numbers of trials; refit the model.")
        if np.any(np.asarray(self.means_, dtype=np.float64) > n_trials):
            raise ValueError("BinomialMixture.means_ must be mean counts no larger than n_trials_; refit the model.")

    # -- the family's settings -----------------------------------------------------------------------
    def _settings(self) -> Any:
        return _core.BinomialSettings(self._fit_n_trials)

    def _steps_n_trials(self) -> tuple[float, ...]:
        return tuple(float(n) for n in self._fit_n_trials)

    def _params_attributes(self, result: dict, dtype: np.dtype) -> dict[str, Any]:
        return {**super()._params_attributes(result, dtype), "n_trials_": self._fit_n_trials.copy()}

    def _score_core(self, X: np.ndarray, with_responsibilities: bool,
                    passes: Passes) -> tuple[np.ndarray, np.ndarray | None]:
        return _core.binomial_mixture_score(X, self.weights_.astype(np.float64), self.means_.astype(np.float64),
                                            _core.BinomialSettings(np.asarray(self.n_trials_, dtype=np.float64)),
                                            with_responsibilities, passes.n_threads, passes.chunk_size)

    def _sample_component(self, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
        n_trials = np.asarray(self.n_trials_, dtype=np.float64)
        probabilities = np.clip(np.asarray(self.means_[k], dtype=np.float64) / n_trials, 0.0, 1.0)
        return rng.binomial(n_trials.astype(np.int64), probabilities, size=(n, n_trials.shape[0])).astype(np.float64)
