"""Mixtures for tables whose columns are of different kinds (DESIGN.md "Second-wave models").

Every column belongs to one family and each component is the product of independent per-column distributions:
p(x | k) = Π_d p_f(d)(x_d | θ_kd).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _core
from ..engine.dask import DaskBlocks, fetch
from ..engine.docs import shared_docstring
from ..engine.driver import Passes
from ..engine.validation import check_memory
from ..monitor import ConvergenceMonitor
from .base import BaseMixture
from .mixed_steps import FAMILIES, MixedMixtureSteps

#: The largest number of trials: every whole number up to it is a float64.
MAX_TRIALS = 2.0**53

#: What each family's values must be, for the error messages.
REQUIREMENTS = {
    "gaussian": "finite numbers",
    "bernoulli": "binary (every value 0 or 1)",
    "poisson": "counts (non-negative integers)",
    "binomial": "counts (whole numbers from 0 to the column's n_trials)",
    "categorical": "integer codes from 0 to n_levels - 1",
    "exponential": "positive (every value > 0 and not subnormal)",
    "gamma": "positive (every value > 0 and not subnormal)",
}


@dataclass(frozen=True)
class ColumnLayout:
    """The family of every column and the known constants, resolved against the data's columns."""

    #: (n_features) the family name of each column
    families: tuple[str, ...]
    #: the number of trials of each binomial column, in column order
    n_trials: tuple[float, ...]
    #: the number of levels of each categorical column, in column order
    n_levels: tuple[int, ...]

    def columns(self, family: str) -> np.ndarray:
        """Return the indices of ``family``'s columns, increasing."""
        return np.asarray([d for d, name in enumerate(self.families) if name == family], dtype=np.intp)

    def steps(self, reg_covar: float) -> MixedMixtureSteps:
        """Return the chunk-level steps of this layout with ``reg_covar``."""
        return MixedMixtureSteps(tuple(FAMILIES.index(name) for name in self.families), self.n_trials,
                                 self.n_levels, float(reg_covar))


@shared_docstring
class MixedMixture(BaseMixture):
    """A mixture for tables with columns of different kinds: each component is a product of per-column families.

    The ELBO and its entropy sum are monitored per iteration.

    Every column belongs to exactly one family: ``"gaussian"`` (mean and variance), ``"bernoulli"`` (0/1),
    ``"poisson"`` (counts), ``"binomial"`` (counts out of ``n_trials``), ``"categorical"`` (integer codes
    0..L−1), ``"exponential"`` or ``"gamma"`` (positive values; the gamma shape is learned by Newton's method).
    The exact M-step of each family is the responsibility-weighted mean of its sufficient statistics. The entropy
    sum is S = H̄[r] − H[π] − Σ_k π̄_k Σ_d H̃_kd + (1/N) Σ_n log h(x_n) with each family's (pseudo-)entropy H̃ and
    the data term of the Poisson (−log x!) and binomial (log C(n, x)) columns (``monitor_.history['data_term']``).
    With ``reg_covar=0`` it equals the ELBO after every M-step; a positive ``reg_covar`` leaves a gap of its order.

    Parameters
    ----------
    n_components : int
        Number of components K.
    families : dict, str or None
        Family name -> the columns of that family, as indices or, for a pandas DataFrame, column names, e.g.
        ``{"gaussian": [0, 1], "categorical": [2], "poisson": [3, 4]}`` (or the same as the text
        ``"gaussian=0,1;categorical=2;poisson=3,4"``). Every column of X must be listed exactly once. None: every
        column is Gaussian.
    n_trials : int, dict or array-like
        The binomial columns' numbers of trials: one whole number for all, a dict column -> number, or one number
        per column in the order of ``families["binomial"]``.
    n_levels : None, int, dict or array-like
        The categorical columns' numbers of levels L (codes 0..L−1): None infers max + 1 of each column at fit;
        otherwise one number for all, a dict column -> number, or one per column in the order of
        ``families["categorical"]``.
    reg_covar : float
        Added to every Gaussian variance in the M-step (non-negative), as in GaussianMixture.
    %(stopping)s
    %(mixture_starts)s
    weights_init, means_init : array-like, optional
        Initial weights (K,) and means E[x_d | k] (K, n_features); they replace the corresponding values from
        ``init_params`` (the variances, shapes and level probabilities still come from it, and the means of
        categorical columns are ignored).
    %(warm_start)s
    %(execution)s

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
        E[x_d | k] of every column: the Gaussian mean, Bernoulli probability, Poisson rate, binomial mean count
        n p, exponential and gamma mean; for a categorical column the expected code Σ_l l p_l (derived).
    variances_ : ndarray of shape (n_components, n_gaussian)
        The variances of the Gaussian columns, in column order.
    shapes_ : ndarray of shape (n_components, n_gamma)
        The shapes k of the gamma columns, in column order (the rates are k / mean).
    probabilities_ : ndarray of shape (n_components, total number of levels)
        The level probabilities of the categorical columns, one column's levels after another's, in column order.
    column_families_ : ndarray of str, shape (n_features,)
        The family of each column.
    n_trials_ : ndarray of shape (n_binomial,)
        The numbers of trials of the binomial columns, in column order (float64).
    n_levels_ : ndarray of shape (n_categorical,)
        The numbers of levels of the categorical columns, in column order.
    %(mixture_fitted)s

    Each column's values must suit its family; a value that does not is a ValueError naming the row, column and
    family. Any numeric dtype; float32 stays float32.
    """

    _fit_layout: ColumnLayout | None = None  # the layout of the fit under way (None outside a fit)
    _fit_names: np.ndarray | None = None
    families: Any  # the parameters, declared for type checkers (``__init__`` sets them)
    n_trials: Any
    n_levels: Any
    reg_covar: float
    variances_: np.ndarray
    shapes_: np.ndarray
    probabilities_: np.ndarray
    column_families_: np.ndarray
    n_trials_: np.ndarray
    n_levels_: np.ndarray

    _fitted_names = ("weights_", "means_", "variances_", "shapes_", "probabilities_", "column_families_", "n_trials_",
                     "n_levels_")
    _numerical_advice = "Increase reg_covar, use fewer components or check the data."

    def __init__(self, n_components: int = 1, families: Any = None, *, n_trials: Any = 1, n_levels: Any = None,
                 reg_covar: float = 1e-6, tol: float | None = 1e-3, gap_tol: float | None = None, max_iter: int = 100,
                 n_init: int = 1, init_params: str = "kmeans", weights_init: Any = None, means_init: Any = None,
                 warm_start: bool = False, random_state: Any = None, verbose: int = 0, n_jobs: int | None = None,
                 chunk_size: int | None = None, learning_offset: float = 10.0, learning_decay: float = 0.7) -> None:
        self._store_params(locals())

    # -- the columns' families ---------------------------------------------------------------------
    def _column_text(self, column: int, names: np.ndarray | None) -> str:
        return f"column {column} ({names[column]!r})" if names is not None and column < len(names) else \
            f"column {column}"

    def _column_index(self, key: Any, n_features: int, names: np.ndarray | None, where: str) -> int:
        """Return the index of the column ``key`` (an index, or a name of a DataFrame's column)."""
        if isinstance(key, (bool, np.bool_)):
            raise ValueError(f"{where} names the column {key!r}; give column indices or names.")
        if isinstance(key, numbers.Integral):
            index = int(key)
            if not 0 <= index < n_features:
                raise ValueError(f"{where} names the column {index}, but X has {n_features} columns (0 to "
                                 f"{n_features - 1}).")
            return index
        if isinstance(key, str):
            if names is None:
                raise ValueError(f"{where} names the column {key!r}, but X has no column names (fit a pandas "
                                 "DataFrame to name columns, or give indices).")
            found = np.flatnonzero(np.asarray(names, dtype=object) == key)
            if found.size == 0:
                raise ValueError(f"{where} names the column {key!r}, which is not a column of X.")
            return int(found[0])
        raise ValueError(f"{where} holds {key!r}; give column indices (int) or column names (str).")

    def _family_columns(self, n_features: int, names: np.ndarray | None) -> dict[str, list[int]]:
        """Return family -> its columns in the order given, each column checked to be listed exactly once."""
        families = self.families
        if families is None:
            return {"gaussian": list(range(n_features))}
        if isinstance(families, str):
            families = parse_families(families)
        if not isinstance(families, Mapping):
            raise ValueError(f"families must be a dict of family name -> columns, got {type(families).__name__}.")
        given: dict[str, list[int]] = {}
        owner: dict[int, str] = {}
        for family, columns in families.items():
            if family not in FAMILIES:
                raise ValueError(f"families names the unknown family {family!r}; choose from "
                                 f"{', '.join(map(repr, FAMILIES))}.")
            if isinstance(columns, (str, numbers.Integral)):
                columns = [columns]
            indices = [self._column_index(key, n_features, names, f"families[{family!r}]") for key in columns]
            for index in indices:
                if index in owner:
                    raise ValueError(f"{self._column_text(index, names)} is assigned twice in families (to "
                                     f"{owner[index]!r} and {family!r}); every column belongs to one family.")
                owner[index] = family
            given[family] = indices
        missing = [d for d in range(n_features) if d not in owner]
        if missing:
            raise ValueError(f"{self._column_text(missing[0], names)} is in no family; every column of X must be "
                             f"listed in families exactly once ({len(missing)} column(s) missing).")
        return given

    def _per_column(self, value: Any, name: str, given: list[int], n_features: int,
                    names: np.ndarray | None) -> np.ndarray | None:
        """Return a constant per column of ``given`` (sorted column order) from one number, a dict or an array."""
        order = np.argsort(given, kind="stable")
        if value is None:
            return None
        if isinstance(value, Mapping):
            by_column = {self._column_index(key, n_features, names, name): item for key, item in value.items()}
            missing = [d for d in given if d not in by_column]
            if missing:
                raise ValueError(f"{name} has no entry for {self._column_text(missing[0], names)}.")
            values = [by_column[d] for d in sorted(given)]
        elif isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{name} must be a whole number, a dict or one number per column, got {value!r}.")
        elif np.isscalar(value):
            values = [value] * len(given)
        else:
            array = np.asarray(value)
            if array.shape != (len(given),):
                raise ValueError(f"{name} must be one number, a dict, or one number per column of the family "
                                 f"({len(given)}), got shape {array.shape}.")
            values = list(array[order])
        try:
            return np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{name} must hold numbers, got {value!r}.") from error

    def _resolve_layout(self, X: Any, names: np.ndarray | None) -> ColumnLayout:
        """Return the layout the parameters give for data ``X`` (the numbers of levels inferred from X if None)."""
        n_features = X.shape[1]
        given = self._family_columns(n_features, names)
        families = [""] * n_features
        for family, columns in given.items():
            for d in columns:
                families[d] = family
        binomial = given.get("binomial", [])
        n_trials = self._per_column(self.n_trials, "n_trials", binomial, n_features, names)
        n_trials = np.empty(0) if n_trials is None else n_trials
        if binomial and n_trials.size:
            bad = ~(np.isfinite(n_trials) & (n_trials >= 1) & (n_trials <= MAX_TRIALS) &
                    (n_trials == np.floor(n_trials)))
            if np.any(bad):
                column = sorted(binomial)[int(np.flatnonzero(bad)[0])]
                raise ValueError(f"n_trials must be whole numbers of trials in [1, 2^53]; "
                                 f"{self._column_text(column, names)} has {n_trials[np.flatnonzero(bad)[0]]:g}.")
        categorical = sorted(given.get("categorical", []))
        n_levels = self._per_column(self.n_levels, "n_levels", given.get("categorical", []), n_features, names)
        if n_levels is None:
            n_levels = self._infer_levels(X, categorical, names)
        bad = ~(np.isfinite(n_levels) & (n_levels >= 1) & (n_levels <= 2**24) & (n_levels == np.floor(n_levels)))
        if np.any(bad):
            column = categorical[int(np.flatnonzero(bad)[0])]
            raise ValueError(f"n_levels must be whole numbers in [1, 2^24]; {self._column_text(column, names)} has "
                             f"{n_levels[np.flatnonzero(bad)[0]]:g}.")
        return ColumnLayout(tuple(families), tuple(float(n) for n in n_trials[:len(binomial)]),
                            tuple(int(n) for n in n_levels))

    def _infer_levels(self, X: Any, categorical: list[int], names: np.ndarray | None) -> np.ndarray:
        """Return max + 1 of each categorical column, after checking that it holds codes (whole numbers ≥ 0)."""
        if not categorical:
            return np.empty(0)
        if isinstance(X, DaskBlocks):
            maximum = np.max(np.stack(fetch(X.map(_column_codes_max, columns=np.asarray(categorical)))), axis=0)
            if np.any(maximum < 0):  # a block with a bad value: its worker's check names it
                raise ValueError(f"the categorical columns of X must hold {REQUIREMENTS['categorical']}.")
            return maximum + 1.0
        levels = []
        for d in categorical:
            values = np.asarray(X[:, d], dtype=np.float64)
            bad = ~((values >= 0) & (values == np.floor(values)) & np.isfinite(values))
            if np.any(bad):
                row = int(np.flatnonzero(bad)[0])
                raise ValueError(self._bad_value_message(row, d, float(values[row]), "categorical", names))
            levels.append(values.max() + 1.0 if values.size else 1.0)
        return np.asarray(levels, dtype=np.float64)

    def _fitted_layout(self) -> ColumnLayout:
        return ColumnLayout(tuple(str(name) for name in self.column_families_),
                            tuple(float(n) for n in np.asarray(self.n_trials_, dtype=np.float64)),
                            tuple(int(n) for n in np.asarray(self.n_levels_)))

    def _layout(self) -> ColumnLayout:
        """Return the layout of the current fit (while fitting) or of the fitted model."""
        layout = getattr(self, "_fit_layout", None)
        return layout if layout is not None else self._fitted_layout()

    def _fit_data(self, X: Any, sample_weight: Any, names: np.ndarray | None = None) -> Any:
        # a (re)fit resolves its families against X and its column names, not a previous fit's layout
        self._fit_names, self._fit_layout = names, None
        self._fitting = True
        try:
            return super()._fit_data(X, sample_weight, names)
        finally:
            self._fitting, self._fit_layout, self._fit_names = False, None, None

    def partial_fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> MixedMixture:
        """Update the model with one chunk of rows by stepwise (online) EM (see ``EMEstimator.partial_fit``).

        The first call resolves ``families`` against this chunk (and infers ``n_levels`` from it when None; later
        chunks must keep to those levels, so give ``n_levels`` when the first chunk may not show them all).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            One chunk of rows.
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Per-row weights.

        Returns
        -------
        self
        """
        if hasattr(self, "monitor_"):
            return super().partial_fit(X, y, sample_weight)
        from ..engine.validation import feature_names

        self._fit_names, self._fit_layout, self._fitting = feature_names(X), None, True
        try:
            return super().partial_fit(X, y, sample_weight)
        finally:
            self._fitting, self._fit_layout, self._fit_names = False, None, None

    # -- data ---------------------------------------------------------------------------------------
    def _bad_value_message(self, row: int, column: int, value: float, family: str, names: np.ndarray | None) -> str:
        text = self._column_text(column, names)
        prefix = "Negative values in data passed to MixedMixture: " if value < 0 and family != "gaussian" else ""
        return (f"{prefix}{text} holds {value:g} in row {row}, but {family} columns must be {REQUIREMENTS[family]} "
                f"for MixedMixture.")

    def _check_values(self, X: np.ndarray, n_threads: int) -> None:
        if getattr(self, "_fitting", False):
            layout = self._fit_layout
            if layout is None:
                layout = self._fit_layout = self._resolve_layout(X, self._fit_names)
            names = self._fit_names
        else:
            self._check_fitted_params()  # the fitted layout must hold together before C++ reads it
            layout, names = self._fitted_layout(), getattr(self, "feature_names_in_", None)
        steps = layout.steps(0.0)
        row, column = _core.mixed_mixture_first_bad_value(X, steps.spec(), n_threads)
        if row >= 0:
            raise ValueError(self._bad_value_message(row, column, float(X[row, column]), layout.families[column],
                                                     names))

    def _check_family_settings(self, X: Any) -> None:
        reg_covar = self.reg_covar
        if isinstance(reg_covar, bool) or not isinstance(reg_covar, numbers.Real) or not (
                np.isfinite(reg_covar) and reg_covar >= 0):
            raise ValueError(f"reg_covar must be a finite non-negative number, got {reg_covar!r}.")
        if getattr(self, "_fitting", False) and self._fit_layout is None:  # a dask array: no check ran here
            self._fit_layout = self._resolve_layout(X, self._fit_names)
        layout = self._layout()
        n_statistics = layout.steps(0.0).spec().n_statistics
        check_memory(f"MixedMixture(n_components={self.n_components}) on {n_statistics} statistics",
                     48.0 * self.n_components * n_statistics, "its parameters and statistics",
                     "Choose fewer components, or fewer categorical levels.")

    def _online_resume(self, X: np.ndarray) -> tuple[Any, dict]:
        self._check_fitted_params()
        return self._steps(), self._current_params()

    # -- initialisation ---------------------------------------------------------------------------
    def _init_given(self) -> bool:
        return False  # the variances, shapes and probabilities always come from a pass over the data

    def _apply_initial_values(self, params: dict) -> dict:
        if self.weights_init is not None:
            params["weights"] = np.asarray(self.weights_init, dtype=np.float64)
        if self.means_init is not None:
            means = np.array(params["means"], dtype=np.float64)
            given = np.asarray(self.means_init, dtype=np.float64)
            keep = np.asarray(self._layout().families) == "categorical"
            means[:, ~keep] = given[:, ~keep]
            params["means"] = means
        return params

    def _init_from_labels(self, X: np.ndarray, weights: np.ndarray, labels: np.ndarray, passes: Passes) -> dict:
        spec = self._steps().spec()
        sums = _core.mixed_mixture_responsibility_statistics(X, weights, labels, 0, 0, self.n_components, spec,
                                                             passes.n_threads, passes.chunk_size)
        return _core.mixed_mixture_from_initial_statistics(sums, spec)

    def _init_random(self, X: np.ndarray, weights: np.ndarray, seed: int, passes: Passes) -> dict:
        spec = self._steps().spec()
        sums = _core.mixed_mixture_responsibility_statistics(X, weights, np.empty(0, dtype=np.intc), seed, 0,
                                                             self.n_components, spec, passes.n_threads,
                                                             passes.chunk_size)
        return _core.mixed_mixture_from_initial_statistics(sums, spec)

    # -- EM and results ---------------------------------------------------------------------------
    def _steps(self) -> MixedMixtureSteps:
        return self._layout().steps(self.reg_covar)

    def _settings(self) -> Any:
        """Return the ``_core.MixedSpec`` of the current layout (the Dask initialisation asks for it)."""
        return self._steps().spec()

    def _gap_regularisation(self) -> str | None:
        return f"reg_covar={self.reg_covar}" if self.reg_covar > 0 and "gaussian" in self._layout().families \
            else None

    def _run_em(self, X: np.ndarray, weights: np.ndarray, params: dict, monitor: ConvergenceMonitor,
                passes: Passes) -> dict:
        callback = monitor._on_iteration if self.verbose else None
        return _core.mixed_mixture_fit(X, weights, _core_params(params), self._steps().spec(), self._stop_options(),
                                       passes.n_threads, passes.chunk_size, callback)

    def _current_params(self) -> dict:
        self._check_fitted_params()
        return {"weights": self.weights_.astype(np.float64), "means": self.means_.astype(np.float64),
                "variances": self.variances_.astype(np.float64), "shapes": self.shapes_.astype(np.float64),
                "probabilities": self.probabilities_.astype(np.float64)}

    def _params_attributes(self, result: dict, dtype: np.dtype) -> dict[str, Any]:
        layout = self._layout()
        return {"weights_": np.asarray(result["weights"]).astype(dtype),
                **{f"{name}_": np.ascontiguousarray(result[name]).astype(dtype)
                   for name in ("means", "variances", "shapes", "probabilities")},
                "column_families_": np.asarray(layout.families, dtype=object),
                "n_trials_": np.asarray(layout.n_trials, dtype=np.float64),
                "n_levels_": np.asarray(layout.n_levels, dtype=np.int64)}

    def _check_family_params(self, n_features: int) -> None:
        super()._check_family_params(n_features)
        families = getattr(self, "column_families_", None)
        if not isinstance(families, np.ndarray) or families.shape != (n_features,) or \
                not all(isinstance(name, str) and name in FAMILIES for name in families):
            raise ValueError(f"MixedMixture.column_families_ must name one family of {FAMILIES} per feature; refit "
                             "the model.")
        K = self.weights_.shape[0]
        count = {name: int(np.sum(families == name)) for name in FAMILIES}
        n_trials = self._fitted_array("n_trials_", (count["binomial"],), why="one per binomial column", minimum=1.0,
                                      maximum=MAX_TRIALS)
        n_levels = self._fitted_array("n_levels_", (count["categorical"],), why="one per categorical column",
                                      minimum=1, maximum=2**24)
        if np.any(n_trials != np.floor(n_trials)) or np.any(n_levels != np.floor(n_levels)):
            raise ValueError("MixedMixture.n_trials_ and n_levels_ must hold whole numbers; refit the model.")
        self._fitted_array("variances_", (K, count["gaussian"]), why="one per Gaussian column", positive=True)
        self._fitted_array("shapes_", (K, count["gamma"]), why="one per gamma column", positive=True)
        self._fitted_array("probabilities_", (K, int(np.sum(n_levels))), why="the levels of the categorical columns",
                           minimum=0.0)

    def _score_core(self, X: np.ndarray, with_responsibilities: bool,
                    passes: Passes) -> tuple[np.ndarray, np.ndarray | None]:
        return _core.mixed_mixture_score(X, self._current_params(), self._fitted_layout().steps(0.0).spec(),
                                         with_responsibilities, passes.n_threads, passes.chunk_size)

    def _n_parameters(self) -> int:
        layout = self._fitted_layout()
        K = self.weights_.shape[0]
        per_column = {"gaussian": 2, "gamma": 2, "categorical": 0}
        free = sum(per_column.get(name, 1) for name in layout.families)
        free += sum(levels - 1 for levels in layout.n_levels)
        return int(K * free + K - 1)

    def _sample_component(self, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
        layout = self._fitted_layout()
        means = np.asarray(self.means_[k], dtype=np.float64)
        sample = np.empty((n, len(layout.families)))
        gaussian, gamma = layout.columns("gaussian"), layout.columns("gamma")
        sample[:, gaussian] = rng.normal(means[gaussian], np.sqrt(np.asarray(self.variances_[k], dtype=np.float64)),
                                         size=(n, gaussian.size))
        bernoulli, poisson, exponential = layout.columns("bernoulli"), layout.columns("poisson"), \
            layout.columns("exponential")
        sample[:, bernoulli] = rng.random((n, bernoulli.size)) < means[bernoulli]
        sample[:, poisson] = rng.poisson(means[poisson], size=(n, poisson.size))
        sample[:, exponential] = rng.exponential(means[exponential], size=(n, exponential.size))
        binomial = layout.columns("binomial")
        trials = np.asarray(layout.n_trials, dtype=np.float64)
        sample[:, binomial] = rng.binomial(trials.astype(np.int64), np.clip(means[binomial] / trials, 0.0, 1.0),
                                           size=(n, binomial.size))
        shapes = np.asarray(self.shapes_[k], dtype=np.float64)
        sample[:, gamma] = rng.gamma(shapes, means[gamma] / shapes, size=(n, gamma.size))
        probabilities = np.asarray(self.probabilities_[k], dtype=np.float64)
        start = 0
        for d, levels in zip(layout.columns("categorical"), layout.n_levels):
            p = probabilities[start:start + levels]
            sample[:, d] = rng.choice(levels, size=n, p=p / p.sum())
            start += levels
        return sample


def parse_families(text: str) -> dict[str, list[int | str]]:
    """Return the families of a text 'gaussian=0,1;poisson=2,age' (the command line's form), columns by index or name.

    Parameters
    ----------
    text : str
        Parts 'family=columns' separated by ';', the columns separated by ','.

    Returns
    -------
    dict
        Family name -> its columns (int indices, str names).
    """
    families: dict[str, list[int | str]] = {}
    for part in text.split(";"):
        family, equals, columns = part.partition("=")
        if not equals or not family.strip() or not columns.strip():
            raise ValueError(f"families as text must be 'family=columns' separated by ';' (e.g. "
                             f"'gaussian=0,1;poisson=2'), got {part!r}.")
        families[family.strip()] = [int(c) if c.strip().isdigit() else c.strip() for c in columns.split(",")]
    return families


def _core_params(params: dict) -> dict:
    """Return the parameters ``_core`` reads, as float64 arrays."""
    return {name: np.asarray(params[name], dtype=np.float64)
            for name in ("weights", "means", "variances", "shapes", "probabilities")}


def _column_codes_max(block: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Return each column's largest value in a block, or -1 where it holds a value that is not a code."""
    values = np.asarray(block[:, columns], dtype=np.float64)
    if values.shape[0] == 0:
        return np.zeros(columns.size)
    ok = np.all((values >= 0) & (values == np.floor(values)) & np.isfinite(values), axis=0)
    return np.where(ok, values.max(axis=0), -1.0)
