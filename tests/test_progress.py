"""Progress bars of verbose fits (verbose=1): tqdm when installed, plain text otherwise; closed when a fit
stops for any reason."""

from __future__ import annotations

import io

import numpy as np
import pytest

import entrosum
from entrosum.monitor import progress

from conftest import low_rank, model_cases


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def plain_text(monkeypatch):
    monkeypatch.setattr(progress, "USE_TQDM", False)


def test_tqdm_bar_shows_iterations_elbo_entropy_sum_and_gap(capsys):
    import tqdm  # noqa: F401  (the test extra installs it)

    X = low_rank(500, 6, 2, seed=5)
    model = entrosum.FactorAnalysis(2, tol=1e-6, verbose=1, random_state=0).fit(X)
    captured = capsys.readouterr()
    assert captured.out == ""
    last = model.monitor_.history
    assert f"{model.n_iter_}/1000" in captured.err and "it/s" in captured.err  # tqdm's counter and rate
    assert f"F={last['elbo'][-1]:+.6e} S={last['entropy_sum'][-1]:+.6e} gap={last['gap'][-1]:+.2e}" in captured.err
    assert captured.err.rstrip().endswith(f"FactorAnalysis: converged: |change of F| < tol after {model.n_iter_} "
                                          "iteration(s)")


def test_plain_text_bar_in_a_log_prints_now_and_then(capsys, monkeypatch, plain_text):
    X = low_rank(500, 6, 2, seed=5)
    model = entrosum.FactorAnalysis(2, tol=1e-6, verbose=1, random_state=0).fit(X)
    lines = capsys.readouterr().err.splitlines()
    # not a terminal: the first iteration, then nothing for LOG_INTERVAL seconds, then the last one
    assert len(lines) == 3 and lines[0].startswith("FactorAnalysis: iter 1/1000 F=")
    assert lines[1].startswith(f"FactorAnalysis: iter {model.n_iter_}/1000 F={model.lower_bound_:+.6e}")
    assert "converged" in lines[2]
    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.0)
    model = entrosum.FactorAnalysis(2, tol=1e-6, verbose=1, random_state=0).fit(X)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split()[2] for line in lines[:-1]] == [f"{i}/1000" for i in range(1, model.n_iter_ + 1)]


def test_plain_text_bar_on_a_terminal_redraws_one_line(plain_text):
    stream = Terminal()
    monitor = entrosum.ConvergenceMonitor(verbose=1, model="M", stream=stream, max_iter=5)
    for i in range(1, 4):
        monitor._on_iteration({"iteration": i, "elbo": -1.0 / i, "entropy_sum": -1.5, "gap": 0.5})
    monitor._finish({name: np.zeros(3) for name in entrosum.monitor.FIELDS}, "max_iter", False)
    text = stream.getvalue()
    assert text.startswith("\rM: iter 1/5 F=-1.000000e+00 S=-1.500000e+00 gap=+5.00e-01")
    assert "\rM: iter 3/5 F=-3.333333e-01" in text  # the last state is drawn before the bar closes
    assert text.count("\n") == 2 and text.endswith("M: not converged: stopped at max_iter after 3 iteration(s)\n")


@pytest.mark.parametrize("name", ["gmm_diag", "poisson", "ppca_em", "fa"])
def test_interrupted_fit_closes_its_bar_and_stays_unfitted(monkeypatch, name):
    closed = []

    class Bar:
        def __init__(self, *args):
            pass

        def update(self, record):
            if record["iteration"] == 2:
                raise KeyboardInterrupt  # what Ctrl-C during the second iteration's callback raises

        def close(self):
            closed.append(True)

    monkeypatch.setattr(entrosum.monitor.convergence, "make_progress", Bar)
    make, data = model_cases()[name]
    model = make().set_params(verbose=1, tol=None, max_iter=50)
    with pytest.raises(KeyboardInterrupt):
        model.fit(data)
    assert closed == [True]
    assert not hasattr(model, "monitor_")
