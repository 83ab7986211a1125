"""Categorical mixtures for integer codes (DESIGN.md "Second-wave models").

log p(x | k) = Σ_d log p_kd[x_d], column d holding a code in {0, ..., L_d − 1}.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _core
from ..engine.docs import shared_docstring
from ..engine.driver import Passes
from ..engine.validation import check_memory
from .discrete import DiscreteMixture

#: The most levels of a column, and in all (the one-hot columns the statistics are over).
MAX_LEVELS = 2**31 - 1


@shared_docstring
class CategoricalMixture(DiscreteMixture):
    """A mixture of products of categorical distributions over integer codes, fitted by EM.

    The ELBO and its entropy sum are monitored per iteration.

    Column d holds codes 0, ..., L_d − 1, and component k gives code l of column d the probability p_kdl. The
    base measure is constant, so the entropy sum uses the true entropies:
    S = H̄[r] − H[π] − Σ_k π̄_k Σ_d H[p_kd]. After every M-step it equals the ELBO, and at convergence both equal
    the mean log-likelihood.

    Parameters
    ----------
    n_components : int
        Number of components K.
    n_levels : None, int or array-like of shape (n_features,)
        The number of levels L_d of each column (one number for all). None: the largest code of each column at
        fit, plus 1.
    %(stopping)s
    %(mixture_starts)s
    weights_init, means_init : array-like, optional
        Initial weights (K,) and probabilities (K, Σ_d L_d) in the layout of ``means_`` (each column's levels
        summing to 1); they replace the corresponding values from ``init_params``.
    %(warm_start)s
    %(execution)s

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, total number of levels)
        The probabilities of all columns side by side: column d's levels 0, ..., L_d − 1 at
        ``offsets_[d]:offsets_[d + 1]``. ``probabilities_`` gives them per column.
    n_levels_ : ndarray of shape (n_features,)
        The numbers of levels the model was fitted with (int64).
    %(mixture_fitted)s

    The data must be codes: whole numbers from 0 to L_d − 1 in column d (any numeric dtype; float32 stays
    float32). A code above the fitted levels in predict or score is refused: the model has no probability for it.
    The k-means starts cluster the codes as numbers; ``init_params='random'`` does not.
    """

    n_levels: Any  # the parameter, declared for type checkers (``__init__`` sets it)
    n_levels_: np.ndarray

    # Codes: scikit-learn's checks then give it non-negative integers.
    _input_tags = {"positive_only": True, "categorical": True}
    _core_prefix = "categorical_mixture"
    _data_requirement = "codes (whole numbers from 0 to n_levels - 1 of the column)"
    _fitted_names = ("weights_", "means_", "n_levels_")

    def __init__(self, n_components: int = 1, n_levels: Any = None, *, tol: float | None = 1e-3,
                 gap_tol: float | None = None, max_iter: int = 100, n_init: int = 1, init_params: str = "kmeans",
                 weights_init: Any = None, means_init: Any = None, warm_start: bool = False,
                 random_state: Any = None, verbose: int = 0, n_jobs: int | None = None,
                 chunk_size: int | None = None, learning_offset: float = 10.0, learning_decay: float = 0.7) -> None:
        self._store_params(locals())

    # -- the numbers of levels ---------------------------------------------------------------------
    def _resolve_n_levels(self, X: Any, n_features: int, n_threads: int = 1) -> np.ndarray:
        """Return ``n_levels`` as (n_features,) int64, checked; None: inferred from the codes of ``X``."""
        given = self.n_levels
        if given is None:
            if not isinstance(X, np.ndarray):  # no data in memory: a loaded model's levels, or ask for them
                if hasattr(self, "n_levels_") and X is not None and not getattr(self, "_fitting", False):
                    return np.asarray(self.n_levels_, dtype=np.int64)
                raise ValueError("n_levels=None infers the levels from data in memory; give n_levels for "
                                 f"{type(X).__name__} input.")
            self._check_codes(X, None, n_threads)
            maxima = np.asarray(X.max(axis=0), dtype=np.float64) if X.shape[0] else np.zeros(n_features)
            return maxima.astype(np.int64) + 1
        if isinstance(given, (bool, np.bool_)) or not (np.isscalar(given) or isinstance(given, (list, tuple,
                                                                                                 np.ndarray))):
            raise ValueError(f"n_levels must be None, a whole number or an array of one per feature, got {given!r}.")
        try:
            values = np.asarray(given, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(f"n_levels must hold numbers, got {given!r}.") from error
        if values.ndim == 0:
            values = np.full(n_features, float(values))
        if values.shape != (n_features,):
            raise ValueError(f"n_levels must be one number or hold one per feature: shape ({n_features},), got "
                             f"{values.shape}.")
        bad = ~(np.isfinite(values) & (values >= 1) & (values <= MAX_LEVELS) & (values == np.floor(values)))
        if np.any(bad):
            column = int(np.flatnonzero(bad)[0])
            raise ValueError(f"n_levels must be whole numbers of levels in [1, 2^31 - 1]; column {column} has "
                             f"{values[column]:g}.")
        if values.sum() > MAX_LEVELS:
            raise ValueError("n_levels sum to more than 2^31 - 1 levels; choose fewer levels.")
        return values.astype(np.int64)

    def _data_n_levels(self, X: np.ndarray, n_threads: int) -> tuple[np.ndarray, bool]:
        """Return the levels the data are checked against, and whether they are a fit's (codes above: unseen)."""
        if hasattr(self, "n_levels_") and not getattr(self, "_fitting", False):
            return np.asarray(self.n_levels_, dtype=np.int64), True
        return self._resolve_n_levels(X, X.shape[1], n_threads), False

    def _fit_data(self, X: Any, sample_weight: Any, names: np.ndarray | None = None) -> Any:
        # a (re)fit checks its data against the n_levels parameter, not a previous fit's n_levels_
        self._fitting = True
        try:
            return super()._fit_data(X, sample_weight, names)
        finally:
            self._fitting = False

    def _check_codes(self, X: np.ndarray, n_levels: np.ndarray | None, n_threads: int, fitted: bool = False) -> None:
        """Refuse values that are not codes (below ``n_levels`` if given), naming row, column and L_d."""
        if n_levels is None:
            row = _core.first_non_count_row(X, n_threads)
            limit = np.full(X.shape[1], np.inf)
        else:
            row = _core.first_non_code_row(X, n_levels, n_threads)
            limit = n_levels.astype(np.float64)
        if row < 0:
            return
        values = X[row].astype(np.float64)
        column = int(np.flatnonzero(~((values >= 0) & (values < limit) & (values == np.floor(values))))[0])
        name = type(self).__name__
        if values[column] < 0:  # scikit-learn's wording, which its checks of non-negative models match
            raise ValueError(f"Negative values in data passed to {name}: X must be {self._data_requirement} for "
                             f"{name}; row {row} holds {values[column]:g} in column {column}.")
        if values[column] != np.floor(values[column]) or n_levels is None:
            raise ValueError(f"X must be {self._data_requirement} for {name}; row {row} holds {values[column]:g} "
                             f"in column {column}.")
        unseen = " (a code not seen at fit)" if fitted else ""
        raise ValueError(f"X must be {self._data_requirement} for {name}; row {row} holds {values[column]:g} in "
                         f"column {column}, which has L_d = {int(n_levels[column])} levels{unseen}.")

    def _check_values(self, X: np.ndarray, n_threads: int) -> None:
        n_levels, fitted = self._data_n_levels(X, n_threads)
        self._check_codes(X, n_levels, n_threads, fitted)

    def _check_family_settings(self, X: np.ndarray) -> None:
        self._fit_n_levels = self._resolve_n_levels(X, X.shape[1])
        check_memory(f"CategoricalMixture(n_components={self.n_components}) on {int(self._fit_n_levels.sum())} "
                     "levels", 48.0 * self.n_components * float(self._fit_n_levels.sum()),
                     "its probabilities and statistics", "Choose fewer components or fewer levels.")

    def _check_initial_values(self, X: np.ndarray) -> None:
        means_init = self.means_init
        self.means_init = None  # its shape is the levels', checked below
        try:
            super()._check_initial_values(X)
        finally:
            self.means_init = means_init
        if means_init is not None:
            n_levels = self._resolve_n_levels(X, X.shape[1])
            means = np.asarray(means_init, dtype=np.float64)
            shape = (self.n_components, int(n_levels.sum()))
            if means.shape != shape:
                raise ValueError(f"means_init must have the shape {shape} (n_components × the sum of n_levels), "
                                 f"got {means.shape}.")
            if not np.all(np.isfinite(means)) or np.any(means < 0) or not np.allclose(
                    np.add.reduceat(means, _offsets(n_levels)[:-1], axis=1), 1.0, rtol=0, atol=1e-6):
                raise ValueError("means_init must hold probabilities for CategoricalMixture: non-negative, each "
                                 "column's levels summing to 1.")

    def _online_resume(self, X: np.ndarray) -> tuple[Any, dict]:
        self._check_fitted_params()
        self._fit_n_levels = np.asarray(self.n_levels_, dtype=np.int64)
        return self._steps(), self._current_params()

    def _check_family_params(self, n_features: int) -> None:
        weights = self._fitted_array("weights_", ndim=1, minimum=0.0)
        if weights.shape[0] < 1 or not weights.sum() > 0:
            raise ValueError("CategoricalMixture.weights_ must hold at least one non-negative weight with a "
                             f"positive sum, got shape {weights.shape}; refit the model.")
        n_levels = self._fitted_array("n_levels_", (n_features,), why="n_features_in_", minimum=1.0,
                                      maximum=MAX_LEVELS)
        if np.any(n_levels != np.floor(n_levels)) or n_levels.sum() > MAX_LEVELS:
            raise ValueError("CategoricalMixture.n_levels_ must hold whole numbers of levels; refit the model.")
        means = self._fitted_array("means_", (weights.shape[0], int(n_levels.sum())),
                                   why="one row per weight in weights_, one column per level of n_levels_",
                                   minimum=0.0, maximum=1.0)
        sums = np.add.reduceat(means.astype(np.float64), _offsets(n_levels.astype(np.int64))[:-1], axis=1)
        if np.any(np.abs(sums - 1.0) > 1e-4):
            raise ValueError("CategoricalMixture.means_ must hold probabilities whose levels sum to 1 in every "
                             "column; refit the model.")

    # -- the family's settings -----------------------------------------------------------------------
    def _settings(self) -> Any:
        return _core.CategoricalSettings(self._fit_n_levels)

    def _steps_n_levels(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self._fit_n_levels)

    def _params_attributes(self, result: dict, dtype: np.dtype) -> dict[str, Any]:
        return {**super()._params_attributes(result, dtype), "n_levels_": self._fit_n_levels.copy()}

    def _score_core(self, X: np.ndarray, with_responsibilities: bool,
                    passes: Passes) -> tuple[np.ndarray, np.ndarray | None]:
        settings = _core.CategoricalSettings(np.asarray(self.n_levels_, dtype=np.int64))
        return _core.categorical_mixture_score(X, self.weights_.astype(np.float64), self.means_.astype(np.float64),
                                               settings, with_responsibilities, passes.n_threads, passes.chunk_size)

    def _n_parameters(self) -> int:
        K = self.means_.shape[0]
        return int(K * int(np.sum(np.asarray(self.n_levels_) - 1)) + K - 1)

    @property
    def offsets_(self) -> np.ndarray:
        """(n_features + 1,) where each column's levels start in ``means_`` (and where the last ends)."""
        return _offsets(np.asarray(self.n_levels_, dtype=np.int64))

    @property
    def probabilities_(self) -> list[np.ndarray]:
        """The probabilities per column: a list of n_features arrays of shape (n_components, L_d)."""
        offsets = self.offsets_
        return [self.means_[:, offsets[d]:offsets[d + 1]] for d in range(len(offsets) - 1)]

    def _sample_component(self, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
        columns = [rng.choice(len(p[k]), size=n, p=np.asarray(p[k], np.float64) / np.sum(p[k], dtype=np.float64))
                   for p in self.probabilities_]
        return np.stack(columns, axis=1).astype(np.float64) if columns else np.empty((n, 0))


def _offsets(n_levels: np.ndarray) -> np.ndarray:
    """(D + 1,) the start of each column's levels in the one-hot layout, and the total."""
    return np.concatenate([[0], np.cumsum(n_levels)]).astype(np.int64)
