"""The convergence monitor: the C++ stopping rule, the history, report, plot and verbose output."""

from __future__ import annotations

import io
import math

import matplotlib
import numpy as np
import pytest

import entrosum
from entrosum import _core

from conftest import low_rank

matplotlib.use("Agg")


def drive(options, elbos, gaps=None):
    """Feed a sequence of ELBO values to the C++ monitor; the entropy terms are chosen to give `gaps`."""
    monitor = _core.Monitor(options)
    gaps = gaps if gaps is not None else [1.0] * len(elbos)
    stopped_at = None
    for t, (elbo, gap) in enumerate(zip(elbos, gaps), start=1):
        # S = posterior − prior − observable = elbo − gap
        if monitor.record(elbo=elbo, posterior_entropy=elbo - gap, prior_entropy=0.0, observable_entropy=0.0):
            stopped_at = t
            break
    return monitor, stopped_at


def test_tol_rule_stops_on_small_change():
    monitor, stopped = drive(_core.StopOptions(tol=1e-3, gap_tol=-1, max_iter=100), [-10, -5, -4.9, -4.8995, -4.8])
    assert stopped == 4 and monitor.stop_reason == "tol" and monitor.converged
    assert math.isnan(monitor.history["change"][0])
    np.testing.assert_allclose(monitor.history["change"][1:], [5, 0.1, 0.0005])


def test_tol_window_stops_on_the_mean_change_over_the_window():
    """With tol_window w the rule compares F_t with F_{t−w}: a single small step between large ones (a dip of
    L-BFGS's gain) does not stop the fit; w small steps in a row do."""
    gains = [1e-2, 1e-2, 5e-5, 1e-2, 1e-2, 1e-2, 5e-5, 5e-5, 5e-5, 5e-5]
    elbos = list(-10 + np.concatenate([[0], np.cumsum(gains)]))
    one_step, stopped = drive(_core.StopOptions(tol=1e-4, gap_tol=-1, max_iter=100), elbos)
    assert stopped == 4  # the first dip
    windowed, stopped = drive(_core.StopOptions(tol=1e-4, gap_tol=-1, max_iter=100, tol_window=3), elbos)
    # F_t − F_{t−3} < 3e-4 first at t = 10 (three gains of 5e-5), not at the dip (t = 4: 1e-2 + 1e-2 + 5e-5)
    assert stopped == 10 and windowed.stop_reason == "tol" and windowed.converged
    with pytest.raises(ValueError, match="tol_window must be at least 1, got 0"):
        _core.StopOptions(tol_window=0)


def test_tol_window_does_not_span_a_change_of_objective():
    """A window across annealed and un-annealed records has no change: the rule waits for w un-annealed steps."""
    monitor = _core.Monitor(_core.StopOptions(tol=1.0, gap_tol=-1, max_iter=100, tol_window=2))
    stops = [monitor.record(elbo=-5.0, posterior_entropy=1.0, prior_entropy=2.0, observable_entropy=0.5,
                            prior_beta=beta) for beta in (2.0, 2.0, 1.0, 1.0, 1.0)]
    assert stops == [False, False, False, False, True]


def test_warmup_iterations_hold_both_rules_after_annealing():
    monitor = _core.Monitor(_core.StopOptions(tol=1.0, gap_tol=1.0, max_iter=100, warmup_iterations=3))
    stops = [monitor.record(elbo=-5.0, posterior_entropy=-5.0, prior_entropy=0.0, observable_entropy=0.0,
                            prior_beta=beta) for beta in (2.0, 1.0, 1.0, 1.0, 1.0)]
    assert stops == [False, False, False, False, True] and monitor.stop_reason == "tol_and_gap_tol"
    with pytest.raises(ValueError, match="warmup_iterations must be at least 0, got -1"):
        _core.StopOptions(warmup_iterations=-1)


def test_gap_rule_stops_on_small_relative_gap():
    elbos = [-10.0] * 5
    gaps = [1.0, 0.1, 1e-3, 1e-5, 1e-7]
    monitor, stopped = drive(_core.StopOptions(tol=-1, gap_tol=1e-5, max_iter=100), elbos, gaps)
    assert stopped == 4 and monitor.stop_reason == "gap_tol"
    np.testing.assert_allclose(monitor.history["gap"], gaps[:4])
    np.testing.assert_allclose(monitor.history["entropy_sum"], np.array(elbos[:4]) - gaps[:4])


def test_both_rules_must_hold():
    elbos = [-10.0, -9.0, -9.0, -9.0, -9.0]
    gaps = [1.0, 1.0, 1.0, 1e-9, 1e-9]
    monitor, stopped = drive(_core.StopOptions(tol=1e-6, gap_tol=1e-6, max_iter=100), elbos, gaps)
    assert stopped == 4 and monitor.stop_reason == "tol_and_gap_tol"


def test_max_iter_stops_unconverged():
    monitor, stopped = drive(_core.StopOptions(tol=1e-12, gap_tol=-1, max_iter=3), [-10, -9, -8, -7])
    assert stopped == 3 and monitor.stop_reason == "max_iter" and not monitor.converged


@pytest.fixture(scope="module")
def fitted():
    X = low_rank(3000, 10, 2, noise_sd=np.linspace(0.3, 0.9, 10), seed=4)
    return entrosum.FactorAnalysis(2, tol=None, gap_tol=1e-9, max_iter=10_000, random_state=0).fit(X)


def test_history_arrays_are_consistent(fitted):
    h = fitted.monitor_.history
    n = fitted.n_iter_
    assert set(h) == set(entrosum.monitor.FIELDS)
    assert all(values.shape == (n,) for values in h.values())
    np.testing.assert_array_equal(h["iteration"], np.arange(1, n + 1))
    np.testing.assert_allclose(
        h["entropy_sum"], h["posterior_entropy"] - h["prior_entropy"] - h["observable_entropy"] + h["data_term"],
        rtol=1e-14)
    np.testing.assert_allclose(h["gap"], h["elbo"] - h["entropy_sum"], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h["change"][1:], np.diff(h["elbo"]), rtol=1e-12, atol=1e-15)
    assert np.all(h["time"] >= 0)
    np.testing.assert_array_equal(fitted.lower_bounds_, h["elbo"])
    assert fitted.lower_bound_ == h["elbo"][-1]
    assert fitted.monitor_.relative_gap[-1] < 1e-9
    assert fitted.monitor_.setup_time > 0  # the initial pass over the data is timed separately


def test_report_fits_on_one_screen_and_names_the_terms(fitted):
    text = fitted.monitor_.report()
    lines = text.splitlines()
    assert len(lines) <= 30 and max(map(len, lines)) <= 120
    for label in ("ELBO F", "entropy sum S", "posterior entropy", "prior entropy", "observable entropy", "gap F - S"):
        assert label in text
    assert "converged: |F - S| / |F| < gap_tol" in text
    assert f"{fitted.monitor_.elbo:.10g}" in text


def test_plot_draws_elbo_entropy_sum_and_gap(fitted):
    values, gaps = fitted.monitor_.plot()
    elbo_line, sum_line = values.get_lines()
    np.testing.assert_array_equal(elbo_line.get_ydata(), fitted.monitor_.history["elbo"])
    np.testing.assert_array_equal(sum_line.get_ydata(), fitted.monitor_.history["entropy_sum"])
    assert gaps.get_yscale() == "log"
    matplotlib.pyplot.close("all")


def test_verbose_2_prints_a_line_per_iteration(capsys):
    X = low_rank(500, 6, 2, seed=5)
    model = entrosum.PPCA(2, solver="em", tol=1e-6, verbose=2, random_state=0).fit(X)
    out = capsys.readouterr().out.splitlines()
    iteration_lines = [line for line in out if line.startswith("PPCA: iter ")]
    assert len(iteration_lines) == model.n_iter_
    assert f"F={model.lower_bounds_[0]:+.8e}" in iteration_lines[0]
    assert "converged" in out[-1]


def test_verbose_stream_and_silence(capsys):
    X = low_rank(500, 6, 2, seed=5)
    entrosum.PPCA(2, solver="em", random_state=0).fit(X)
    assert capsys.readouterr().out == ""
    monitor = entrosum.ConvergenceMonitor(verbose=2, stream=io.StringIO())
    monitor._on_iteration({"iteration": 1, "elbo": -1.0, "entropy_sum": -1.5, "gap": 0.5, "change": float("nan"),
                           "time": 0.1})
    assert monitor.stream.getvalue().startswith("iter     1  F=-1.00000000e+00  S=-1.50000000e+00")


def test_max_iter_warns_and_records_reason():
    X = low_rank(500, 6, 2, seed=5)
    with pytest.warns(entrosum.ConvergenceWarning, match="did not converge in max_iter=2"):
        model = entrosum.FactorAnalysis(2, tol=1e-12, max_iter=2, random_state=0).fit(X)
    assert not model.converged_ and model.monitor_.stop_reason == "max_iter" and model.n_iter_ == 2


def test_annealed_records_have_no_change_and_do_not_stop():
    """Values under annealing weights β ≠ 1 are of another objective: no change across a change of weights, and
    the stopping rules wait for the un-annealed iterations."""
    monitor = _core.Monitor(_core.StopOptions(tol=1.0, gap_tol=-1, max_iter=100))
    betas = [(10, 1), (10, 1), (2, 3), (1, 1), (1, 1)]
    stops = [monitor.record(elbo=-5.0, posterior_entropy=1.0, prior_entropy=2.0, observable_entropy=0.5,
                            prior_beta=beta_p, observable_beta=beta_l) for beta_p, beta_l in betas]
    assert stops == [False, False, False, False, True] and monitor.stop_reason == "tol"
    h = monitor.history
    np.testing.assert_array_equal(h["prior_beta"], [10, 10, 2, 1, 1])
    np.testing.assert_array_equal(h["observable_beta"], [1, 1, 3, 1, 1])
    # the change is defined only between records with the same weights
    np.testing.assert_array_equal(np.isnan(h["change"]), [True, False, True, True, False])
    # the entropy sum weights the prior and observable terms: S = H[q] − β_p H[prior] − β_l E H[p(x|z)]
    np.testing.assert_allclose(h["entropy_sum"], [1 - 20 - 0.5, 1 - 20 - 0.5, 1 - 4 - 1.5, -1.5, -1.5])


def test_gap_rule_waits_for_the_end_of_annealing():
    monitor = _core.Monitor(_core.StopOptions(tol=-1, gap_tol=1e-3, max_iter=100))
    # S = F exactly at every record; only the third is un-annealed
    stops = [monitor.record(elbo=-1.0, posterior_entropy=-1.0 + beta, prior_entropy=1.0, observable_entropy=0.0,
                            prior_beta=beta) for beta in (4.0, 2.0, 1.0)]
    assert stops == [False, False, True] and monitor.stop_reason == "gap_tol"


def test_plot_marks_the_thresholds_and_the_change_of_f():
    X = low_rank(500, 6, 2, seed=5)
    model = entrosum.FactorAnalysis(2, tol=1e-9, gap_tol=1e-7, max_iter=5000, random_state=0).fit(X)
    values, signals = model.monitor_.plot()
    labels = [line.get_label() for line in signals.get_lines()]
    assert labels == ["|F - S| / |F|", "|change of F|", "gap_tol=1e-07", "tol=1e-09"]
    gap_line, change_line, gap_tol_line, tol_line = signals.get_lines()
    np.testing.assert_array_equal(gap_tol_line.get_ydata(), [1e-7, 1e-7])
    np.testing.assert_array_equal(tol_line.get_ydata(), [1e-9, 1e-9])
    change = np.abs(model.monitor_.history["change"][1:])
    np.testing.assert_array_equal(change_line.get_ydata(), change[change > 0])
    assert signals.get_yscale() == "log"
    matplotlib.pyplot.close("all")


def test_report_aligns_its_columns_and_reads_times():
    X = low_rank(500, 6, 2, seed=5)
    report = entrosum.FactorAnalysis(2, random_state=0).fit(X).monitor_.report()
    lines = [line for line in report.splitlines() if line.strip().startswith("iter ")]
    assert len({len(line) for line in lines}) == 1, lines  # the first line, without a change, as wide as the rest
    assert all(line.endswith(("s", "µs", "ms")) for line in lines)
    assert " ms" in report or " µs" in report
