"""The one fit driver of every estimator: validation → data source → C++ EM → monitor → fitted attributes.

A model family subclasses :class:`EMEstimator` and writes only what is its own:

* ``_check_settings(X)``: validate its constructor parameters against the data, returning what its starts need;
* ``_fit_start(X, weights, settings, rng, monitor, passes)``: one start, its initial parameters and its EM (through
  ``_core`` in memory, or over the blocks of a Dask array), returning the C++ result: the parameters plus
  ``history``, ``stop_reason``, ``converged`` and ``setup_time``;
* ``_params_attributes(result, dtype)``: the fitted parameter attributes (``means_``, ``components_``, ...);

and where it differs from the defaults: ``_check_values`` (data values the family cannot model), ``_n_starts``
(several starts, the best kept), ``_takes_sample_weight``, ``_min_samples``, ``_numerical_advice``,
``_fit_pass_checks_finite``.

The driver owns the rest, the same for every model: data sources (arrays, memory maps, iterables of chunks, Dask
arrays), threads and chunks, NaN checks, the monitor and its progress display, the best of several starts, the
ConvergenceWarning, and setting every fitted attribute at once, so that a failed or interrupted fit leaves a
previously fitted model as it was. ``partial_fit`` (stepwise EM, ``online.update``) publishes through the same
attributes.
"""

from __future__ import annotations

import functools
import numbers
import sys
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _core
from ..exceptions import ComponentRecoveryWarning, convergence_warning
from ..monitor import ConvergenceMonitor
from . import online
from .csr import as_csr_data
from .dask import DaskBlocks, is_dask_array
from .data_source import fit_data
from .estimator import BaseEstimator
from .validation import (
    MAX_INT,
    caller_stacklevel,
    check_choice,
    check_data,
    check_feature_names,
    check_fitted_array,
    check_int,
    check_not_sparse,
    check_random_state,
    check_sample_weight,
    check_tolerance,
    feature_names,
    is_sparse,
    resolve_chunk_size,
    resolve_n_jobs,
)

#: Advice in a ConvergenceWarning when more iterations would help.
_MORE_ITERATIONS = "Increase max_iter, loosen tol or gap_tol, or check the data."


@dataclass(frozen=True)
class Passes:
    """How the C++ passes over the data run: ``n_threads`` threads over chunks of ``chunk_size`` rows (0: auto)."""

    n_threads: int
    chunk_size: int


class EMEstimator(BaseEstimator):
    """Base of every estimator: the fit driver, and the checks before inference on new data."""

    #: Advice appended to the error raised when a fit fails numerically.
    _numerical_advice = "Scale the data or choose fewer components."
    #: Fewest rows ``fit`` accepts.
    _min_samples = 2
    #: Whether ``fit`` and ``partial_fit`` take ``sample_weight``.
    _takes_sample_weight = False
    #: Whether fit, partial_fit and inference take scipy.sparse matrices (kept sparse, ``engine.csr``); others refuse
    #: them with a message that says how to densify.
    _takes_sparse = False
    #: Whether every in-memory fit path starts with a C++ moments pass, which reports NaN/inf itself (the first
    #: such row, as validation words it): fit then skips the separate scan, one read of the data fewer.
    _fit_pass_checks_finite = False
    #: Fewest iterations ``max_iter`` may ask for (0 for the mixtures: initialise only, as scikit-learn allows).
    _min_max_iter = 1

    # Constructor parameters every estimator has and attributes every fit sets, declared for type checkers only
    # (no values, so ``hasattr`` still tells a fitted model).
    n_components: int
    tol: float | None
    gap_tol: float | None
    max_iter: int
    random_state: Any
    verbose: int
    n_jobs: int | None
    chunk_size: int | None
    learning_offset: float
    learning_decay: float
    n_features_in_: int
    monitor_: ConvergenceMonitor
    n_iter_: int
    converged_: bool
    lower_bound_: float
    lower_bounds_: np.ndarray

    #: Fitted attributes of every estimator; with the family's ``_fitted_names`` they are all a saved model may set.
    _common_fitted_names = ("n_features_in_", "feature_names_in_", "n_iter_", "converged_", "lower_bound_",
                            "lower_bounds_")
    #: The family's own fitted attributes (its documented ones).
    _fitted_names: tuple[str, ...] = ()

    @classmethod
    def _saved_attributes(cls) -> frozenset[str]:
        """Return the names of the fitted attributes a saved model may set (``entrosum.load`` refuses others)."""
        return frozenset(cls._common_fitted_names + cls._fitted_names)

    def _check_fitted_params(self) -> None:
        """Check the fitted attributes that inference hands to C++, against each other and the settings.

        Raises a ValueError naming the attribute, its shape and the one expected, so that a tampered attribute or a
        corrupt model file never reaches C++ with sizes that do not fit (which could read out of bounds).
        """
        n_features = getattr(self, "n_features_in_", None)
        if isinstance(n_features, bool) or not isinstance(n_features, numbers.Integral) or n_features < 1:
            raise ValueError(f"{type(self).__name__}.n_features_in_ must be a positive integer, got {n_features!r}.")
        self._check_family_params(int(n_features))

    def _check_family_params(self, n_features: int) -> None:
        """Check the family's fitted attributes for ``n_features`` features (each family defines it)."""

    def _fitted_array(self, name: str, shape: tuple[int, ...] | None = None, *, ndim: int | None = None,
                      why: str = "", minimum: float | None = None, maximum: float | None = None,
                      positive: bool = False) -> np.ndarray:
        """Return the fitted attribute ``name`` checked: a finite real array of ``shape`` (or ``ndim``) in a range."""
        return check_fitted_array(type(self).__name__, name, getattr(self, name, None), shape, ndim=ndim, why=why,
                                  minimum=minimum, maximum=maximum, positive=positive)

    # -- what each family provides ------------------------------------------------------------------
    def _check_settings(self, X: Any) -> Any:
        """Validate the constructor parameters for data ``X``; return what ``_fit_start`` needs."""
        raise NotImplementedError

    def _fit_start(self, X: Any, weights: np.ndarray, settings: Any, rng: np.random.Generator,
                   monitor: ConvergenceMonitor, passes: Passes) -> dict:
        """Run one start (initial parameters and EM); return the C++ result with its history."""
        raise NotImplementedError

    def _params_attributes(self, result: dict, dtype: np.dtype) -> dict[str, Any]:
        """Return the fitted parameter attributes from a result's parameters."""
        raise NotImplementedError

    def _check_values(self, X: np.ndarray, n_threads: int) -> None:
        """Refuse data values the family cannot model (binary data, counts, ...); any finite value by default."""

    def _n_starts(self) -> int:
        """Return the number of starts of one fit; the one with the highest final ELBO is kept."""
        return 1

    def _online_start(self, X: np.ndarray, weights: np.ndarray | None, passes: Passes) -> tuple[Any, dict]:
        """Return ``partial_fit``'s steps (``engine.steps``) and initial parameters from its first chunk."""
        raise NotImplementedError

    def _online_resume(self, X: np.ndarray) -> tuple[Any, dict]:
        """Return ``partial_fit``'s steps and the current parameters, to continue a fit with stepwise EM."""
        raise NotImplementedError

    def _online_result(self, params: dict, statistics: Any) -> dict:
        """Return the result that ``partial_fit`` makes fitted attributes from (the parameters, by default)."""
        return params

    # -- the driver ------------------------------------------------------------------------------------
    def _passes(self) -> Passes:
        return Passes(resolve_n_jobs(self.n_jobs), resolve_chunk_size(self.chunk_size))

    def _check_common_settings(self) -> None:
        """Validate the parameters every estimator has (before the family's own, ``_check_settings``)."""
        self._stop_options()
        # verbose=True means 1, as in scikit-learn
        check_int(int(self.verbose) if isinstance(self.verbose, bool) else self.verbose, "verbose", minimum=0)
        check_random_state(self.random_state)

    def _stop_options(self, **model_rules: Any) -> Any:
        """Return the user's stopping rules as ``_core.StopOptions``, with a model's own ``model_rules``.

        ``model_rules`` are further StopOptions fields, such as ``warmup_iterations``.
        """
        return _core.StopOptions(tol=check_tolerance(self.tol, "tol", allow_none=True),
                                 gap_tol=check_tolerance(self.gap_tol, "gap_tol", allow_none=True),
                                 max_iter=check_int(self.max_iter, "max_iter", minimum=self._min_max_iter,
                                                    maximum=MAX_INT),
                                 previous_elbo=self._previous_elbo(), **model_rules)

    def _numerical_message(self, error: Exception) -> str:
        """Return the message of the ValueError raised when a fit fails numerically: what failed and what to do."""
        return f"{type(self).__name__} could not be fitted: {error}. {self._numerical_advice}"

    def _previous_elbo(self) -> float:
        """Return the ELBO a warm start continues from (the first iteration's change is taken from it), else NaN."""
        return float("nan")

    def _gap_regularisation(self) -> str | None:
        """Name the setting that keeps the M-step from being exact (so F − S cannot close), e.g. 'reg_covar=1e-06'."""
        return None

    def _unconverged_advice(self) -> str:
        """Return the advice of a ConvergenceWarning when more iterations (or a looser tol) would help."""
        return _MORE_ITERATIONS

    def _new_monitor(self) -> ConvergenceMonitor:
        return ConvergenceMonitor(tol=self.tol, gap_tol=self.gap_tol, max_iter=self.max_iter, verbose=self.verbose,
                                  model=type(self).__name__)

    def _fit(self, X: Any, sample_weight: Any = None) -> Any:
        """Fit to ``X`` from any data source: what every estimator's ``fit`` calls."""
        if self._takes_sparse and is_sparse(X):  # checked and converted to CSR in _check_data
            return self._fit_data(X, sample_weight)
        check_not_sparse(X)
        names = feature_names(X)
        if is_dask_array(X):
            from .dask_em import dask_blocks

            if sample_weight is not None:
                raise ValueError("sample_weight is not supported with a dask array yet; fit without it.")
            with dask_blocks(X) as blocks:
                return self._fit_data(blocks, None, names)
        with fit_data(X) as data:
            return self._fit_data(data, sample_weight, names)

    def _fit_data(self, X: Any, sample_weight: Any, names: np.ndarray | None = None) -> Any:
        passes = self._passes()
        X = self._check_data(X, passes.n_threads, min_samples=self._min_samples,
                             finite=not self._fit_pass_checks_finite)
        weights = self._check_sample_weight(sample_weight, X.shape[0])
        self._check_common_settings()
        settings = self._check_settings(X)
        rng = check_random_state(self.random_state)
        best: tuple[dict, ConvergenceMonitor] | None = None
        for _ in range(self._n_starts()):
            monitor = self._new_monitor()
            try:
                result = self._fit_start(X, weights, settings, rng, monitor, passes)
            except _core.NumericalError as error:
                raise ValueError(self._numerical_message(error)) from error
            except MemoryError as error:  # an allocation the sizes checked in _check_settings did not foresee
                raise MemoryError(f"{type(self).__name__} ran out of memory fitting data of shape {X.shape} with "
                                  f"n_components={self.n_components!r}: {error}. Choose fewer components, or fit "
                                  "on fewer features.") from error
            finally:
                monitor._close_progress()  # also when the fit failed or was interrupted
            monitor._finish(result["history"], result["stop_reason"], result["converged"],
                            result.get("setup_time", 0.0), result.get("recoveries", ()))
            if best is None or monitor.elbo > best[1].elbo:
                best = (result, monitor)
        assert best is not None, "every estimator makes at least one start"
        result, monitor = best
        attributes = self._fitted_attributes(result, X.dtype, monitor, X.shape[1], names)
        self._check_finite_fit(attributes, X)
        # All attributes are set together, after every start has succeeded, in one dict update that no signal can
        # split: Ctrl-C never leaves a half-updated model.
        self._publish(attributes)
        self._warn_of_recoveries(monitor.recoveries)
        self._warn_if_unconverged(monitor)
        return self

    def partial_fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        """Update the model with one chunk of rows by stepwise (online) EM.

        The chunk's E-step statistics, normalised per sample, are blended into running statistics,
        s <- (1 - ρ_t) s + ρ_t s_chunk / n_chunk with ρ_t = (t + learning_offset)^(-learning_decay) for the
        t-th chunk, and an M-step makes the parameters from them. The first call on an unfitted estimator
        initialises from its chunk with the estimator's initialisation and ``random_state``; a call after
        ``fit`` continues from the fitted parameters; ``fit`` starts afresh. ``monitor_`` records one entry per
        chunk: F and S of the chunk at the parameters before the update, and as ``m_step_elbo`` /
        ``m_step_entropy_sum`` those of the running statistics after it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            One chunk of rows, validated as ``fit`` validates data.
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Per-row weights (mixtures only).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            For a chunk of the wrong shape, with NaN or infinity, values the model cannot take, or a number of
            features other than the fitted one; for invalid ``learning_offset`` / ``learning_decay``; when an
            update fails numerically. A failed update leaves the model as it was.
        TypeError
            For non-numeric data, or sample weights given to a model that takes none.
        """
        online.update(self, X, sample_weight)
        return self

    def _check_finite_fit(self, attributes: dict[str, Any], X: Any) -> None:
        """Refuse a fit whose parameters overflowed: a model with NaN or infinite parameters is never returned."""
        for name in self._fitted_names:
            value = attributes.get(name)
            if isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind == "f" and \
                    not np.all(np.isfinite(value)):
                largest = ""
                if isinstance(X, np.ndarray) and X.size:
                    largest = f" The data's largest magnitude is {float(np.max(np.abs(X))):.3g} in {X.dtype};"
                raise ValueError(f"{type(self).__name__} could not be fitted: its parameters overflowed ({name} is not "
                                 f"finite).{largest} scale the data (e.g. divide it by its standard deviation) so "
                                 "that the squares of its values and their sums stay far within the floating-point "
                                 "range.")

    def _publish(self, attributes: dict[str, Any]) -> None:
        """Set the fitted attributes at once; ``feature_names_in_`` of an earlier fit goes when the new one has none."""
        if "feature_names_in_" not in attributes:
            vars(self).pop("feature_names_in_", None)
        vars(self).update(attributes)

    def _fitted_attributes(self, result: dict, dtype: np.dtype, monitor: ConvergenceMonitor,
                           n_features: int, names: np.ndarray | None = None) -> dict[str, Any]:
        """Return every fitted attribute: the family's parameters and what all models share."""
        # lower_bounds_ holds ELBOs only: iterations of an annealed objective are NaN there (their values stay in
        # the monitor's history).
        lower_bounds = np.where(monitor.annealed, np.nan, monitor.history["elbo"])
        attributes = {**self._params_attributes(result, dtype), "n_features_in_": int(n_features),
                      "monitor_": monitor, "n_iter_": monitor.n_iter, "converged_": monitor.converged,
                      "lower_bounds_": lower_bounds,
                      # no iteration (max_iter=0): -inf, as in scikit-learn
                      "lower_bound_": float(lower_bounds[-1]) if len(lower_bounds) else -np.inf}
        if names is not None and len(names) == n_features:
            attributes["feature_names_in_"] = names  # the column names of a data frame, as in scikit-learn
        return attributes

    def _warn_of_recoveries(self, recoveries: list[dict[str, Any]]) -> None:
        """Warn of every component an M-step re-seeded, naming it and the iteration, at the user's call."""
        for recovery in recoveries:
            cause = ("was empty (no sample had any responsibility for it)" if recovery["reason"] == "empty"
                     else "collapsed (its covariance was singular)")
            warnings.warn(
                f"{type(self).__name__}: component {recovery['component']} {cause} at iteration "
                f"{recovery['iteration']}; it was re-seeded at the worst-explained sample (row {recovery['row']}) and "
                "the fit went on. Fewer components may suit these data.", ComponentRecoveryWarning,
                stacklevel=caller_stacklevel())

    def _warn_if_unconverged(self, monitor: ConvergenceMonitor) -> None:
        """Issue a ConvergenceWarning that says which rule was not met and why, pointing at the user's call."""
        name = type(self).__name__
        if monitor.stop_reason == "line_search":
            message = (f"{name} stopped: its line search found no further increase of the ELBO (relative gap "
                       f"{monitor.relative_gap[-1]:.3g}). {_MORE_ITERATIONS}")
        elif monitor.stop_reason == "max_iter" and monitor.n_iter > 0:  # max_iter=0 only initialises
            message = self._unconverged_message(monitor)
        else:
            return
        warnings.warn(message, convergence_warning(), stacklevel=caller_stacklevel())

    def _unconverged_message(self, monitor: ConvergenceMonitor) -> str:
        history, relative_gap = monitor.history, monitor.relative_gap
        change = float(history["change"][-1])
        unmet, more_iterations = [], False
        if self.tol is not None and not abs(change) < self.tol:
            unmet.append(f"the ELBO still changed by {change:.3g} per sample in the last iteration (tol={self.tol})"
                         if change == change else f"tol={self.tol} needs a second iteration to compare with")
            more_iterations = True
        if self.gap_tol is not None and not relative_gap[-1] < self.gap_tol:
            text = f"the relative gap |F - S| / |F| is {relative_gap[-1]:.3g}, above gap_tol={self.gap_tol}"
            cause = self._gap_regularisation()
            stalled = monitor.n_iter >= 2 and relative_gap[-1] > 0.99 * relative_gap[-2]
            if cause is not None and stalled:
                unmet.append(f"{text}: it is held open by {cause}, which keeps the M-step from being exact, and has "
                             f"stopped shrinking; more iterations will not close it (set {cause.split('=')[0]}=0 or "
                             "stop on tol instead)")
            else:
                unmet.append(text)
                more_iterations = True
        reasons = "; and ".join(unmet) or "its stopping rule was not met"
        advice = f" {self._unconverged_advice()}" if more_iterations else ""
        return f"{type(self).__name__} did not converge in max_iter={self.max_iter} iteration(s): {reasons}.{advice}"

    # -- data ------------------------------------------------------------------------------------------
    def _check_data(self, X: Any, n_threads: int, *, n_features: int | None = None, min_samples: int = 1,
                    finite: bool = True) -> Any:
        """Return ``X`` checked (shape, dtype, NaN, the family's values); a Dask array is checked on its workers.

        ``finite=False`` skips the NaN/inf scan of an array in memory (see ``_fit_pass_checks_finite``).
        """
        if isinstance(X, DaskBlocks):  # every block checked on its worker, in parallel
            X.check(functools.partial(self._check_data, n_threads=1, n_features=n_features))
            if X.shape[0] < min_samples:
                raise ValueError(f"X has {X.shape[0]} sample(s); at least {min_samples} are required.")
            return X
        if self._takes_sparse and is_sparse(X):  # kept sparse: its three arrays cross into C++ (engine.csr)
            X = as_csr_data(X, n_features=n_features, min_samples=min_samples, estimator=type(self).__name__)
            self._check_values(X, n_threads)
            return X
        X = check_data(X, n_threads=n_threads, n_features=n_features, min_samples=min_samples,
                       estimator=type(self).__name__, finite=finite)
        self._check_values(X, n_threads)
        return X

    def _check_sample_weight(self, sample_weight: Any, n_samples: int) -> np.ndarray:
        """Return the weights as float64 (empty: none); a model without weights refuses them."""
        if sample_weight is None:
            return np.empty(0)
        if not self._takes_sample_weight:
            raise TypeError(f"{type(self).__name__} does not take sample_weight.")
        return check_sample_weight(sample_weight, n_samples)

    def _inference_data(self, X: Any) -> tuple[np.ndarray, Passes]:
        """Check that the model is fitted and ``X`` has its features; return ``X`` and how passes over it run."""
        self._check_fitted("monitor_")
        if not self._takes_sparse:
            check_not_sparse(X)
        check_feature_names(X, getattr(self, "feature_names_in_", None), type(self).__name__)
        passes = self._passes()
        return self._check_data(X, passes.n_threads, n_features=self.n_features_in_), passes


class ScoreMixin:
    """``score`` as the mean of ``score_samples`` (the mean log-likelihood), for models with a likelihood."""

    def score_samples(self, X: Any) -> np.ndarray:
        """Return the log-likelihood of each sample (each model defines it)."""
        raise NotImplementedError

    def _log_likelihoods(self, X: Any) -> np.ndarray:
        """Return the log-likelihood of each sample in float64 (each model defines it)."""
        raise NotImplementedError

    def score(self, X: Any, y: Any = None) -> float:
        """Return the mean log-likelihood of the samples.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples with the fitted model's features.
        y : ignored

        Returns
        -------
        float
        """
        # the mean of score_samples, as in scikit-learn (in float32 for float32 data)
        return float(np.mean(self.score_samples(X)))


#: Output containers of ``set_output``, as in scikit-learn.
OUTPUT_CONTAINERS = ("default", "pandas", "polars")


class TransformMixin:
    """``fit_transform``, ``get_feature_names_out`` and ``set_output`` for models whose ``transform`` gives codes.

    A subclass's ``transform`` is wrapped (as scikit-learn's own transformers are) so that, after
    ``set_output(transform="pandas")`` or under scikit-learn's ``set_config(transform_output="pandas")``, it returns
    a data frame with the columns ``get_feature_names_out()`` and, for a data-frame input, its index.
    """

    components_: np.ndarray

    if TYPE_CHECKING:  # BaseEstimator's, which every transformer also derives from
        def _check_fitted(self, attribute: str = "components_") -> None: ...

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Wrap the subclass's own ``transform`` so that its output follows ``set_output``."""
        super().__init_subclass__(**kwargs)
        method = cls.__dict__.get("transform")
        if method is not None and not getattr(method, "_wraps_output", False):
            @functools.wraps(method)
            def transform(self: Any, X: Any, *args: Any, **kwargs: Any) -> Any:
                return self._wrap_output(method(self, X, *args, **kwargs), X)

            transform._wraps_output = True  # type: ignore[attr-defined]
            cls.transform = transform  # type: ignore[method-assign]

    def fit(self, X: Any, y: Any = None) -> Any:
        """Fit the model (each model defines it)."""
        raise NotImplementedError

    def transform(self, X: Any) -> np.ndarray:
        """Return the posterior means (each model defines it)."""
        raise NotImplementedError

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit, then return the posterior means of ``X``."""
        return self.fit(X).transform(X)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Return the names of ``transform``'s columns: the class name in lower case and the component's index.

        Parameters
        ----------
        input_features : array-like of str, optional
            Checked against the features seen in ``fit`` when given.

        Returns
        -------
        ndarray of str objects, shape (n_components,)
            E.g. ``['ppca0', 'ppca1']``, as scikit-learn names its decompositions' outputs.
        """
        self._check_fitted("components_")
        if input_features is not None:
            given = np.asarray(input_features, dtype=object)
            fitted = getattr(self, "feature_names_in_", None)
            n_features = getattr(self, "n_features_in_", given.shape[0])
            if given.shape != (n_features,) or (fitted is not None and not np.array_equal(given, fitted)):
                raise ValueError("input_features is not equal to feature_names_in_ (or does not have n_features_in_ "
                                 "entries).")
        prefix = type(self).__name__.lower()
        return np.asarray([f"{prefix}{i}" for i in range(self.components_.shape[0])], dtype=object)

    def set_output(self, *, transform: str | None = None) -> Any:
        """Choose the container ``transform`` and ``fit_transform`` return, as scikit-learn's transformers do.

        Parameters
        ----------
        transform : {'default', 'pandas', 'polars'} or None
            'default': numpy arrays; 'pandas' / 'polars': a data frame (the library must be installed); None leaves
            the setting as it is.

        Returns
        -------
        self
        """
        if transform is None:
            return self
        check_choice(transform, "transform", OUTPUT_CONTAINERS)
        self._sklearn_output_config = {**getattr(self, "_sklearn_output_config", {}), "transform": transform}
        return self

    def _output_container(self) -> str:
        container = getattr(self, "_sklearn_output_config", {}).get("transform")
        if container is None and "sklearn" in sys.modules:  # scikit-learn's global set_config(transform_output=...)
            import sklearn

            container = sklearn.get_config().get("transform_output", "default")
        return container or "default"

    def _wrap_output(self, result: Any, X: Any) -> Any:
        container = self._output_container()
        if container == "default" or not isinstance(result, np.ndarray) or result.ndim != 2:
            return result
        columns = list(self.get_feature_names_out())
        if container == "pandas":
            import pandas

            index = X.index if isinstance(X, pandas.DataFrame) else None
            return pandas.DataFrame(result, columns=columns, index=index, copy=False)
        import polars

        return polars.DataFrame(result, schema=columns, orient="row")


class PriorSampler(EMEstimator):
    """An estimator whose ``sample`` draws z from the prior and then x given z (``_draw``)."""

    components_: np.ndarray

    def _draw(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        """Return ``n_samples`` draws of x, in float64."""
        raise NotImplementedError

    def sample(self, n_samples: int = 1, random_state: Any = None) -> np.ndarray:
        """Draw samples from the fitted model.

        Parameters
        ----------
        n_samples : int
            Number of samples.
        random_state : int, Generator or None
            Seed; the estimator's own ``random_state`` when None.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            In the dtype of the fitted parameters.
        """
        self._check_fitted("components_")
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        rng = check_random_state(self.random_state if random_state is None else random_state)
        return self._draw(n_samples, rng).astype(self.components_.dtype)
