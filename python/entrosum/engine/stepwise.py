"""Drivers built on the chunk-level step API (``steps``).

EM over statistics merged from any set of chunks, and stepwise (online) EM for ``partial_fit``.

``run_em`` is the Python twin of the C++ ``run_em`` (cpp/include/entrosum/core/em.hpp): the same order of E-step,
terms, M-step and terms after the M-step, recorded by the same C++ monitor with the same stopping rule, so a
fit whose statistics are merged from chunks (Dask blocks, say) matches the in-memory fit up to the rounding of
the merged sums.

Stepwise EM (Cappé & Moulines 2009; Liang & Klein 2009) keeps running statistics normalised per sample and
blends in each new chunk's, s <- (1 - ρ_t) s + ρ_t s_chunk / n_chunk with ρ_t = (t + t0)^(-κ), then runs an
M-step. κ in (0.5, 1] makes Σ ρ_t diverge and Σ ρ_t² converge, the conditions under which the running
statistics converge.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _core
from ..monitor import FIELDS, ConvergenceMonitor

#: Default step-size parameters, named and valued as scikit-learn's LatentDirichletAllocation names its own.
LEARNING_OFFSET = 10.0
LEARNING_DECAY = 0.7


def run_em(steps: Any, statistics_of: Callable[[dict], Any], params: dict, stop: Any,
           on_iteration: Callable[[dict], None] | None = None) -> tuple[dict, Any]:
    """EM through the step API until the monitor's rule stops it.

    Parameters
    ----------
    steps : a family's steps (``mixtures.steps``, ``linear.steps``, ``sparse.steps``)
    statistics_of : callable
        ``statistics_of(params)`` returns the statistics of all data merged (one pass over the chunks); it is
        called once when the statistics do not depend on the parameters.
    params : dict
        Starting parameters Θ_1.
    stop : _core.StopOptions
    on_iteration : callable, optional
        Called with each iteration's record (a dict), e.g. a monitor's progress display.

    Returns
    -------
    (params, monitor) : the parameters after the last M-step and the C++ monitor with the history (and the
    components M-steps re-seeded, ``monitor.recoveries``).
    """
    monitor = _core.Monitor(stop)
    stats = None
    while True:
        started = time.perf_counter()
        if stats is None or steps.statistics_depend_on_params:
            stats = statistics_of(params)
        params = steps.refine(params, stats)
        expectation = steps.expectation(stats, params)
        terms = steps.terms(expectation, params)  # F(q_t, Θ_t), S(q_t, Θ_t)
        updated = steps.m_step(expectation, params, stats)  # Θ_{t+1}
        monitor.note_recoveries(updated.get("recovered", []))
        after = steps.terms(expectation, updated)  # F(q_t, Θ_{t+1}), S(q_t, Θ_{t+1})
        params = updated
        done = monitor.record(**_record_terms(terms), seconds=time.perf_counter() - started, after=after)
        if on_iteration is not None:
            on_iteration(monitor.last)
        if done:
            return params, monitor


def _record_terms(terms: dict) -> dict:
    names = ("elbo", "posterior_entropy", "prior_entropy", "observable_entropy", "data_term", "prior_beta",
             "observable_beta")
    return {name: terms[name] for name in names}


def check_learning_rate(learning_offset: Any, learning_decay: Any) -> tuple[float, float]:
    """(t0, κ) validated: t0 >= 0 (with t0 + 1 >= 1 so that ρ_t <= 1) and κ in (0.5, 1]."""
    for name, value in (("learning_offset", learning_offset), ("learning_decay", learning_decay)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise TypeError(f"{name} must be a finite number, got {value!r}.")
    if learning_offset < 0:
        raise ValueError(f"learning_offset must be >= 0, got {learning_offset}.")
    if not 0.5 < learning_decay <= 1.0:
        raise ValueError(f"learning_decay must be in (0.5, 1] for stepwise EM to converge, got {learning_decay}.")
    return float(learning_offset), float(learning_decay)


@dataclass(frozen=True)
class StepwiseState:
    """What ``partial_fit`` keeps between calls.

    Every update makes a new one, so a failed update leaves the old state (and the estimator) as they were.
    """

    steps: Any
    params: dict
    #: Running statistics normalised to one sample, or None before the first chunk.
    statistics: Any
    #: Number of chunks blended in so far (t).
    n_updates: int
    #: The history, one record per chunk, as lists of floats.
    history: dict
    #: The monitor these updates were last published in: a ``fit`` since then replaces the estimator's monitor,
    #: which resets stepwise EM.
    monitor: Any = None


def start_state(steps: Any, params: dict) -> StepwiseState:
    """Return the state before the first chunk, from initial parameters."""
    return StepwiseState(steps, params, None, 0, {name: [] for name in FIELDS})


def stepwise_update(state: StepwiseState, X: np.ndarray, sample_weight: np.ndarray | None, learning_offset: float,
                    learning_decay: float, n_threads: int, chunk_size: int) -> StepwiseState:
    """Blend one chunk into the running statistics and run an M-step.

    The record of the chunk holds F and S of the chunk's q at the parameters before the update (a progressive,
    per-chunk estimate) and, as ``m_step_elbo``/``m_step_entropy_sum``, F and S of the running statistics with
    the parameters the M-step made from them.
    """
    steps, params = state.steps, state.params
    started = time.perf_counter()
    chunk = steps.chunk_statistics(params, X, sample_weight, n_threads, chunk_size)
    terms = steps.terms(steps.expectation(chunk, params), params)
    if state.statistics is None:
        blended = chunk.scaled(1.0 / chunk.count)
    else:
        rho = (state.n_updates + learning_offset) ** (-learning_decay)
        # the chunk first: GMM statistics are merged about the shift of the left operand, the current one
        blended = chunk.scaled(rho / chunk.count) + state.statistics.scaled(1.0 - rho)
    refined = steps.refine(params, blended)
    expectation = steps.expectation(blended, refined)
    updated = steps.m_step(expectation, refined, blended)
    after = steps.terms(expectation, updated)

    history = {name: list(values) for name, values in state.history.items()}
    elbos = history["elbo"]
    same_objective = bool(elbos) and history["prior_beta"][-1] == terms["prior_beta"] and \
        history["observable_beta"][-1] == terms["observable_beta"]
    record = {"iteration": len(elbos) + 1, **_record_terms(terms), "entropy_sum": terms["entropy_sum"],
              "gap": terms["elbo"] - terms["entropy_sum"],
              "change": terms["elbo"] - elbos[-1] if same_objective else math.nan,
              "time": time.perf_counter() - started, "m_step_elbo": after["elbo"],
              "m_step_entropy_sum": after["entropy_sum"]}
    for name in FIELDS:
        history[name].append(record[name])
    return StepwiseState(steps, updated, blended, state.n_updates + 1, history, state.monitor)


def history_monitor(state: StepwiseState, template: ConvergenceMonitor) -> ConvergenceMonitor:
    """Return a monitor holding the stepwise history (stop reason 'partial_fit'), with ``template``'s settings."""
    history = {name: np.asarray(values, dtype=np.int64 if name == "iteration" else np.float64)
               for name, values in state.history.items()}
    template._finish(history, "partial_fit", False, 0.0)
    return template
