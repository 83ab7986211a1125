"""What the mixture estimators share, following ``sklearn.mixture.GaussianMixture``.

The initialisations (``init_params``, given initial values, ``warm_start``), ``n_init`` starts (run by the fit
driver, ``engine.driver``), prediction, scores, information criteria and sampling.
"""

from __future__ import annotations

import time
from typing import Any, cast

import numpy as np

from .. import _core
from ..engine.csr import CsrData
from ..engine.dask import DaskBlocks
from ..engine.driver import EMEstimator, Passes, ScoreMixin
from ..engine.validation import check_choice, check_int, check_random_state
from ..monitor import FIELDS, ConvergenceMonitor

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")


def kmeans_function(name: str, X: Any) -> Any:
    """Return ``_core.kmeans`` or ``_core.kmeans_plusplus`` bound to ``X``, or their CSR twins for sparse data."""
    if isinstance(X, CsrData):
        function = getattr(_core, f"{name}_csr")
        return lambda *args: function(*X.core_args(), *args)
    dense = getattr(_core, name)
    return lambda *args: dense(X, *args)


class BaseMixture(ScoreMixin, EMEstimator):
    """A mixture fitted by EM; subclasses supply the parameters and the C++ calls of one family."""

    _min_samples = 1
    _takes_sample_weight = True
    _estimator_type_tag = "DensityEstimator"
    _min_max_iter = 0  # max_iter=0: the initial parameters only, as in scikit-learn

    # Declared for type checkers only (no values, so ``hasattr`` still tells a fitted model): the parameters
    # every mixture's ``__init__`` stores beyond the common ones, and the attributes ``fit`` sets.
    n_init: int
    init_params: str
    weights_init: Any
    means_init: Any
    warm_start: bool
    weights_: np.ndarray
    means_: np.ndarray

    _fitted_names: tuple[str, ...] = ("weights_", "means_")

    def _check_family_params(self, n_features: int) -> None:
        """Check ``weights_`` (K,) (non-negative, with a positive sum) and ``means_`` (K, n_features)."""
        weights = self._fitted_array("weights_", ndim=1, minimum=0.0)
        if weights.shape[0] < 1 or not weights.sum() > 0:
            raise ValueError(f"{type(self).__name__}.weights_ must hold at least one non-negative weight with a "
                             f"positive sum, got shape {weights.shape}; refit the model.")
        self._fitted_array("means_", (weights.shape[0], n_features), why="one row per weight in weights_, "
                           "n_features_in_ columns", minimum=self._means_range.get("minimum"),
                           maximum=self._means_range.get("maximum"))

    #: Bounds of ``means_`` (Bernoulli probabilities, Poisson rates).
    _means_range: dict[str, float] = {}

    # -- to be provided by each family -------------------------------------------------------------
    #: Advice appended to the error raised when a fit fails numerically.
    _numerical_advice = "Use fewer components or check the data."

    def _check_family_settings(self, X: np.ndarray) -> None:
        """Family-specific settings (covariance type, pseudo-counts, further initial parameters)."""

    def _check_means_init(self, means: np.ndarray) -> None:
        """Family-specific range of ``means_init`` (shape and finiteness are checked already)."""

    def _init_from_labels(self, X: np.ndarray, weights: np.ndarray, labels: np.ndarray, passes: Passes) -> dict:
        """Parameters from one-hot responsibilities (label -1: none), as the family's M-step makes them."""
        raise NotImplementedError

    def _init_random(self, X: np.ndarray, weights: np.ndarray, seed: int, passes: Passes) -> dict:
        """Parameters from uniform random responsibilities drawn from ``seed``."""
        raise NotImplementedError

    def _init_given(self) -> bool:
        """Whether the user-given initial parameters are complete, so no pass over the data is needed."""
        return self.weights_init is not None and self.means_init is not None

    def _apply_initial_values(self, params: dict) -> dict:
        """Replace initial parameters by the user-given ones."""
        if self.weights_init is not None:
            params["weights"] = np.asarray(self.weights_init, dtype=np.float64)
        if self.means_init is not None:
            params["means"] = np.asarray(self.means_init, dtype=np.float64)
        return params

    def _run_em(self, X: np.ndarray, weights: np.ndarray, params: dict, monitor: ConvergenceMonitor,
                passes: Passes) -> dict:
        """EM in memory from initial parameters: the family's C++ fit."""
        raise NotImplementedError

    def _current_params(self) -> dict:
        raise NotImplementedError

    def _score_core(self, X: np.ndarray, with_responsibilities: bool,
                    passes: Passes) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def _n_parameters(self) -> int:
        raise NotImplementedError

    def _sample_component(self, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def _steps(self) -> Any:
        """Return the family's chunk-level steps (``mixtures.steps``) with this estimator's settings."""
        raise NotImplementedError

    # -- partial_fit (stepwise EM, engine.online) ---------------------------------------------------
    def _online_start(self, X: np.ndarray, weights: np.ndarray | None, passes: Passes) -> tuple[Any, dict]:
        self._check_settings(X)
        rng = check_random_state(self.random_state)
        weights = np.empty(0) if weights is None else weights
        return self._steps(), self._initial_params(X, weights, rng, passes)

    def _online_resume(self, X: np.ndarray) -> tuple[Any, dict]:
        self._check_family_settings(X)
        return self._steps(), self._current_params()

    # -- shared -----------------------------------------------------------------------------------
    def _check_initial_values(self, X: np.ndarray) -> None:
        # The messages hold scikit-learn's wording, which code and tests written for it match.
        K, D = self.n_components, X.shape[1]
        if self.weights_init is not None:
            weights = np.asarray(self.weights_init, dtype=np.float64)
            if weights.shape != (K,):
                raise ValueError(f"The parameter 'weights' should have the shape of ({K},), but got {weights.shape} "
                                 "(weights_init: one weight per component).")
            if np.any(weights < 0) or np.any(weights > 1):
                raise ValueError(f"The parameter 'weights' should be in the range [0, 1], but got min value "
                                 f"{weights.min():.5f}, max value {weights.max():.5f} (weights_init).")
            tolerance = 1e-6 if np.asarray(self.weights_init).dtype == np.float32 else 1e-8  # scikit-learn's
            if not abs(1.0 - weights.sum()) <= tolerance:
                raise ValueError(f"The parameter 'weights' should be normalized, but got sum(weights) = "
                                 f"{weights.sum():.5f} (weights_init must sum to 1).")
        if self.means_init is not None:
            means = np.asarray(self.means_init, dtype=np.float64)
            if means.shape != (K, D):
                raise ValueError(f"The parameter 'means' should have the shape of ({K}, {D}), but got {means.shape} "
                                 "(means_init: n_components × n_features).")
            if not np.all(np.isfinite(means)):
                raise ValueError("means_init contains NaN or infinity.")
            self._check_means_init(means)

    def _initial_params(self, X: Any, weights: np.ndarray, rng: np.random.Generator, passes: Passes) -> dict:
        """Return initial parameters from ``init_params`` (scikit-learn's meanings), then the user-given values.

        'kmeans': one-hot on k-means labels; 'k-means++': one-hot on the k-means++ seeds only;
        'random': uniform random responsibilities; 'random_from_data': one-hot on random rows.
        """
        if isinstance(X, DaskBlocks):
            from .dask_init import mixture_initial_params

            return mixture_initial_params(self, X, rng)
        K, n_threads, chunk_size = self.n_components, passes.n_threads, passes.chunk_size
        seed = int(rng.integers(2**63))
        if self._init_given():
            params: dict = {}  # everything is given: no pass over the data
        elif self.init_params == "kmeans":
            labels = kmeans_function("kmeans", X)(weights, K, seed, 100, n_threads, chunk_size)[1]
            params = self._init_from_labels(X, weights, labels, passes)
        elif self.init_params == "random":
            params = self._init_random(X, weights, seed, passes)
        else:
            if self.init_params == "k-means++":
                chosen = kmeans_function("kmeans_plusplus", X)(weights, K, seed, n_threads)
            else:
                chosen = rng.choice(X.shape[0], size=K, replace=False)
            labels = np.full(X.shape[0], -1, dtype=np.intc)
            labels[chosen] = np.arange(K, dtype=np.intc)
            params = self._init_from_labels(X, weights, labels, passes)
        return self._apply_initial_values(params)

    def _check_settings(self, X: Any) -> None:
        n_components = check_int(self.n_components, "n_components", minimum=1)
        if n_components > X.shape[0]:
            raise ValueError(f"Expected n_samples >= n_components but got n_components = {n_components}, "
                             f"n_samples = {X.shape[0]}; choose fewer components.")
        check_int(self.n_init, "n_init", minimum=1)
        check_choice(self.init_params, "init_params", INIT_PARAMS)
        self._check_initial_values(X)
        self._check_family_settings(X)
        if self._warm() and self.n_features_in_ != X.shape[1]:
            raise ValueError(f"X has {X.shape[1]} features, but the model was fitted with {self.n_features_in_} "
                             "features; warm_start needs the same features.")

    def _warm(self) -> bool:
        """Whether the next fit continues from the current parameters (``warm_start`` on a fitted model)."""
        return bool(self.warm_start) and hasattr(self, "monitor_")

    def _n_starts(self) -> int:
        return 1 if self._warm() else self.n_init

    def _previous_elbo(self) -> float:
        # scikit-learn's warm start: the first change is measured from the previous fit's lower bound
        return float(self.lower_bound_) if self._warm() else float("nan")

    def _unconverged_advice(self) -> str:
        # scikit-learn's words (code written for it matches them), for the rules more iterations would meet
        return ("Best performing initialization did not converge. Try different init parameters, or increase "
                "max_iter, tol, or check for degenerate data.")

    def _fit_start(self, X: Any, weights: np.ndarray, settings: Any, rng: np.random.Generator,
                   monitor: ConvergenceMonitor, passes: Passes) -> dict:
        started = time.perf_counter()
        initial = self._current_params() if self._warm() else self._initial_params(X, weights, rng, passes)
        setup_time = time.perf_counter() - started  # the initialising passes (k-means, first M-step)
        if self._stop_options().max_iter == 0:  # the initial parameters are the fit
            history = {name: np.empty(0, dtype=np.int64 if name == "iteration" else np.float64) for name in FIELDS}
            return {**initial, "history": history, "stop_reason": "max_iter", "converged": False,
                    "setup_time": setup_time}
        if isinstance(X, DaskBlocks):
            from .dask_init import mixture_em

            result = mixture_em(self, X, initial, monitor)
        else:
            result = self._run_em(X, weights, initial, monitor, passes)
        return {**result, "setup_time": result["setup_time"] + setup_time}

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> BaseMixture:
        """Fit by EM, keeping the best of ``n_init`` starts (highest final ELBO).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            An array in memory, a memory-mapped array (``np.load(path, mmap_mode='r')``, read in place a
            chunk at a time), or an iterable of 2-D chunks (or a function returning a fresh iterator of them)
            for data that live in several files; see ``entrosum.engine.data_source``. A ``dask.array.Array`` is
            fitted on the current ``distributed`` client: its blocks stay on the workers, which run every pass
            over them, while the M-steps run here; the result equals the in-memory fit with the same
            ``random_state`` up to rounding (``entrosum.engine.dask``).
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights; an integer weight acts like repeating the row (not with a dask array).

        Returns
        -------
        self
            The fitted estimator.

        Raises
        ------
        ValueError
            For invalid data or parameters, or when the fit fails numerically (the message says what to change).
            A failed or interrupted fit leaves a previously fitted model unchanged.
        ConvergenceWarning
            Issued (a warning) when ``max_iter`` is reached first.
        """
        return self._fit(X, sample_weight)

    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None) -> np.ndarray:
        """Fit, then return the most probable component of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, as for :meth:`fit`.
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        return self.fit(X, sample_weight=sample_weight).predict(X)

    def score_samples(self, X: Any) -> np.ndarray:
        """Return the log-likelihood log p(x_n) of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples with the fitted model's features.

        Returns
        -------
        ndarray of shape (n_samples,)
            The log-likelihoods, computed in double, in the dtype of ``X`` (float32 or float64).

        Raises
        ------
        NotFittedError
            When the model has not been fitted.
        """
        X, passes = self._inference_data(X)
        # computed in double; given in the data's dtype, as scikit-learn does (bic and aic sum the doubles)
        return self._score_core(X, False, passes)[0].astype(X.dtype, copy=False)

    def _log_likelihoods(self, X: Any) -> np.ndarray:
        """Return the log-likelihoods log p(x_n) in float64."""
        X, passes = self._inference_data(X)
        return self._score_core(X, False, passes)[0]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Return the responsibilities p(k | x_n).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples with the fitted model's features.

        Returns
        -------
        ndarray of shape (n_samples, n_components)
            Each row sums to 1.
        """
        X, passes = self._inference_data(X)
        # Asked for with_responsibilities=True, the core returns them (never None).
        return cast(np.ndarray, self._score_core(X, True, passes)[1])

    def predict(self, X: Any) -> np.ndarray:
        """Return the most probable component of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples with the fitted model's features.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        return np.argmax(self.predict_proba(X), axis=1)

    def bic(self, X: Any) -> float:
        """Return the Bayesian information criterion −2 log-likelihood + n_parameters · log n_samples.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples with the fitted model's features.

        Returns
        -------
        float
            Lower is better.
        """
        scores = self._log_likelihoods(X)
        return float(-2.0 * scores.sum() + self._n_parameters() * np.log(scores.shape[0]))

    def aic(self, X: Any) -> float:
        """Return the Akaike information criterion −2 log-likelihood + 2 n_parameters.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples with the fitted model's features.

        Returns
        -------
        float
            Lower is better.
        """
        return float(-2.0 * self._log_likelihoods(X).sum() + 2.0 * self._n_parameters())

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw samples and their components from the fitted mixture (random state: ``random_state``).

        Parameters
        ----------
        n_samples : int
            Number of samples.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            In the dtype of the fitted means.
        labels : ndarray of shape (n_samples,)
            The component each sample came from.
        """
        self._check_fitted("monitor_")
        n_samples = check_int(n_samples, "n_samples", minimum=0)
        if n_samples < 1:
            raise ValueError(f"Invalid value for 'n_samples': {n_samples}. The sampling requires at least one sample.")
        rng = check_random_state(self.random_state)
        weights = np.asarray(self.weights_, dtype=np.float64)
        counts = rng.multinomial(n_samples, weights / weights.sum())  # the count guard leaves a sum of 1 + O(eps)
        draws = [self._sample_component(k, int(n), rng) for k, n in enumerate(counts)]
        labels = np.repeat(np.arange(len(counts)), counts)
        return np.concatenate(draws).astype(self.means_.dtype), labels
