"""``partial_fit`` for every estimator: stepwise EM through the chunk-level step API (``stepwise``).

``driver.EMEstimator.partial_fit`` calls :func:`update`; a family provides two hooks, the steps and initial
parameters from a first chunk (its own initialisation and ``random_state``) and the steps and current parameters
of a fitted model, and the update publishes the result through the driver's fitted attributes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import _core
from ..monitor import ConvergenceMonitor
from .stepwise import StepwiseState, check_learning_rate, history_monitor, start_state, stepwise_update
from .validation import check_feature_names, check_not_sparse, feature_names

if TYPE_CHECKING:
    from .driver import EMEstimator

#: Advice for the error raised when an update fails numerically.
ADVICE = "Use larger chunks, fewer components, or scale the data."


def update(estimator: EMEstimator, X: Any, sample_weight: Any) -> None:
    """Blend one chunk into the estimator's stepwise-EM state and publish the new parameters."""
    offset, decay = check_learning_rate(estimator.learning_offset, estimator.learning_decay)
    passes = estimator._passes()
    n_threads, chunk_size = passes.n_threads, passes.chunk_size
    state: StepwiseState | None = getattr(estimator, "_online_state", None)
    if state is not None and state.monitor is not getattr(estimator, "monitor_", None):
        state = None  # a fit replaced the model since the last update
    fitted = hasattr(estimator, "monitor_")
    if not estimator._takes_sparse:
        check_not_sparse(X)
    names = getattr(estimator, "feature_names_in_", None) if fitted else feature_names(X)
    if fitted:
        check_feature_names(X, names, type(estimator).__name__)
    X = estimator._check_data(X, n_threads, n_features=estimator.n_features_in_ if fitted else None,
                              min_samples=estimator._min_samples if state is None else 1)
    weights = None if sample_weight is None else estimator._check_sample_weight(sample_weight, X.shape[0])
    try:
        if state is None:
            estimator._check_common_settings()
            steps, params = (estimator._online_resume(X) if fitted
                             else estimator._online_start(X, weights, passes))
            state = start_state(steps, params)
        state = stepwise_update(state, X, weights, offset, decay, n_threads, chunk_size)
    except _core.NumericalError as error:
        raise ValueError(f"{type(estimator).__name__}.partial_fit failed: {error}. {ADVICE}") from error
    monitor = history_monitor(state, ConvergenceMonitor(tol=None, max_iter=state.n_updates, verbose=0,
                                                        model=type(estimator).__name__))
    result = estimator._online_result(state.params, state.statistics)
    attributes = {**estimator._fitted_attributes(result, X.dtype, monitor, X.shape[1], names), "converged_": False}
    estimator._check_finite_fit(attributes, X)
    recoveries = [{"iteration": state.n_updates, "component": int(component), "row": int(row), "reason": str(reason)}
                  for component, row, reason in state.params.get("recovered", ())]
    state = StepwiseState(state.steps, state.params, state.statistics, state.n_updates, state.history, monitor)
    # One dict update that no signal can split: the model is the old one or the new one, never a mix.
    estimator._publish({**attributes, "_online_state": state})
    estimator._warn_of_recoveries(recoveries)
