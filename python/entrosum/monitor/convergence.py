"""The convergence monitor shared by every model (DESIGN.md §5).

Per iteration t it holds, from the one E-step pass with parameters Θ_t: the ELBO F(q_t, Θ_t) per
sample, the entropy sum S(q_t, Θ_t) with its terms, the gap F − S, the change of F and the wall time.
The C++ driver applies the stopping rule; this object keeps the history and presents it.

With entropy-based annealing (sparse coding) an iteration may weight the prior and observable entropy
terms by β_p, β_l ≠ 1; its F and S are then those of the annealed objective, not the ELBO, and the
history, the report and the plot label them so.
"""

from __future__ import annotations

import math
import sys
from typing import Any, TextIO

import numpy as np

from .progress import make_progress

FIELDS = (
    "iteration",
    "elbo",
    "entropy_sum",
    "posterior_entropy",
    "prior_entropy",
    "observable_entropy",
    "data_term",
    "gap",
    "change",
    "time",
    "m_step_elbo",
    "m_step_entropy_sum",
    "prior_beta",
    "observable_beta",
)

_REASONS = {
    "tol": "converged: |change of F| < tol",
    "gap_tol": "converged: |F - S| / |F| < gap_tol",
    "tol_and_gap_tol": "converged: |change of F| < tol and |F - S| / |F| < gap_tol",
    "closed_form": "solved in closed form",
    "gradient": "converged: the gradient solver's gradient vanished",
    "line_search": "stopped: the gradient solver's line search found no further increase",
    "max_iter": "not converged: stopped at max_iter",
    "partial_fit": "stepwise EM: one update per partial_fit chunk",
    "running": "running",
}


def format_seconds(seconds: float) -> str:
    """Return a duration readably: '1.23 s', '45.6 ms', '789 µs'."""
    if not seconds == seconds:
        return "-"
    if seconds >= 1.0 or seconds == 0.0:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


class ConvergenceMonitor:
    """History and stopping state of one fit: the ELBO, the entropy sum, its terms and their gap.

    Parameters
    ----------
    tol : float or None
        Stop when the change of the ELBO per sample between iterations is below ``tol``.
    gap_tol : float or None
        Stop when ``|F - S| / |F|`` is below ``gap_tol``. With both rules set, both must hold.
    max_iter : int
        Most iterations; reaching it without meeting the rules leaves ``converged`` False.
    verbose : int
        1 shows a progress bar (iteration, F, S and the gap; drawn by tqdm when installed, plain text
        otherwise) on ``sys.stderr``; 2 or more prints a line per iteration on ``sys.stdout``.
    model : str
        Name of the model, for reports.
    stream : file-like, optional
        Where the progress bar or the lines go instead.

    Attributes
    ----------
    history : dict of numpy arrays
        One entry per iteration for each of ``iteration``, ``elbo``, ``entropy_sum``,
        ``posterior_entropy``, ``prior_entropy``, ``observable_entropy``, ``data_term``, ``gap``,
        ``change`` (NaN at the first iteration), ``time`` (seconds), and ``m_step_elbo`` and
        ``m_step_entropy_sum``: F and S for the same q with the parameters its M-step produced (equal
        after every exact M-step for models whose prior and observable parameters are all learned),
        ``prior_beta`` and ``observable_beta``: the annealing weights β_p, β_l of the iteration (1 without
        annealing; where either is not 1, ``elbo`` and ``entropy_sum`` hold the annealed objective
        F_β = E[log p(x|z)]·β_l + E[log p(z)]·β_p + H[q] and S_β = H[q] − β_p H[prior] − β_l E H[p(x|z)],
        not the ELBO, and ``change`` is NaN where the weights changed).
    stop_reason : str
        ``'tol'``, ``'gap_tol'``, ``'tol_and_gap_tol'``, ``'closed_form'``, ``'max_iter'``, ``'gradient'``
        or ``'line_search'`` (gradient solvers), or ``'running'`` before the fit ends.
    converged : bool
    setup_time : float
        Seconds spent before the first iteration (the initial pass over the data).
    """

    def __init__(self, tol: float | None = 1e-4, gap_tol: float | None = None, max_iter: int = 1000,
                 verbose: int = 0, model: str = "", stream: TextIO | None = None) -> None:
        self.tol = tol
        self.gap_tol = gap_tol
        self.max_iter = max_iter
        self.verbose = int(verbose)  # True means 1, as in scikit-learn
        self.model = model
        self.stream = stream
        self.history: dict[str, np.ndarray] = {name: np.empty(0) for name in FIELDS}
        self.stop_reason = "running"
        self.converged = False
        self.setup_time = 0.0
        #: Components an M-step re-seeded (empty or collapsed), as dicts with iteration, component, row, reason.
        self.recoveries: list[dict[str, Any]] = []
        self._progress: Any = None

    # -- filled by the estimators --------------------------------------------------------------
    def _output(self) -> TextIO:
        return self.stream or (sys.stdout if self.verbose >= 2 else sys.stderr)

    def _on_iteration(self, record: dict[str, Any]) -> None:
        """Show one iteration (called from C++ after each iteration when verbose)."""
        if self.verbose >= 2:
            prefix = f"{self.model}: " if self.model else ""
            print(prefix + self._line(record), file=self._output(), flush=True)
        elif self.verbose == 1:
            if self._progress is None:
                self._progress = make_progress(self.max_iter, self.model or "fit", self._output())
            self._progress.update(record)

    def _close_progress(self) -> None:
        """Close the progress bar, if one is shown (also when a fit fails or is interrupted)."""
        if self._progress is not None:
            progress, self._progress = self._progress, None
            progress.close()

    def _finish(self, history: dict[str, np.ndarray], stop_reason: str, converged: bool,
                setup_time: float = 0.0, recoveries: Any = ()) -> None:
        self._close_progress()
        self.recoveries = [{"iteration": int(iteration), "component": int(component), "row": int(row),
                            "reason": str(reason)} for iteration, component, row, reason in recoveries]
        self.history = {name: np.asarray(history[name]) for name in FIELDS}
        self.setup_time = float(setup_time)
        self.stop_reason = stop_reason
        self.converged = bool(converged)
        if self.verbose:
            print(f"{self.model}: {_REASONS.get(stop_reason, stop_reason)} after {self.n_iter} iteration(s)",
                  file=self._output(), flush=True)

    def __getstate__(self) -> dict[str, Any]:
        """Return the state to pickle, without the progress bar and the stream."""
        # A progress bar is only alive during a fit, and streams do not pickle.
        state = dict(self.__dict__)
        state["_progress"] = None
        state["stream"] = None
        return state

    # -- reading -------------------------------------------------------------------------------
    @property
    def n_iter(self) -> int:
        """Number of recorded iterations."""
        return int(self.history["elbo"].size)

    def _last(self, name: str) -> float:
        values = self.history[name]
        return float(values[-1]) if values.size else math.nan

    @property
    def elbo(self) -> float:
        """ELBO per sample at the last iteration."""
        return self._last("elbo")

    @property
    def entropy_sum(self) -> float:
        """Entropy sum at the last iteration."""
        return self._last("entropy_sum")

    @property
    def gap(self) -> float:
        """F − S at the last iteration."""
        return self._last("gap")

    @property
    def annealed(self) -> np.ndarray:
        """Per iteration, whether its values are of an annealed objective (β_p or β_l ≠ 1), not of the ELBO."""
        return (self.history["prior_beta"] != 1) | (self.history["observable_beta"] != 1)

    @property
    def relative_gap(self) -> np.ndarray:
        """``|F − S| / |F|`` per iteration."""
        return np.abs(self.history["gap"]) / np.abs(self.history["elbo"])

    @staticmethod
    def _line(record: dict[str, Any]) -> str:
        change = record["change"]
        change_text = f"{'':9s}" if change != change else f"{change:+.2e}"  # blank, as wide, before a change exists
        line = (f"iter {int(record['iteration']):5d}  F={record['elbo']:+.8e}  S={record['entropy_sum']:+.8e}  "
                f"gap={record['gap']:+.2e}  dF={change_text}  {format_seconds(record['time']):>8s}")
        prior_beta, observable_beta = record.get("prior_beta", 1.0), record.get("observable_beta", 1.0)
        if prior_beta != 1 or observable_beta != 1:
            line += f"  [annealed: beta_p={prior_beta:g} beta_l={observable_beta:g}]"
        return line

    def report(self) -> str:
        """Summarise the fit on one screen.

        The summary shows why it stopped, the first and last values of F, S, its terms and the gap, and a
        few iterations in between.

        Returns
        -------
        str
            The text, lines separated by newlines; print it.
        """
        lines = [f"ConvergenceMonitor{f' ({self.model})' if self.model else ''}: {self.n_iter} iteration(s), "
                 f"{_REASONS.get(self.stop_reason, self.stop_reason)}"]
        settings = [f"tol={self.tol}", f"gap_tol={self.gap_tol}", f"max_iter={self.max_iter}"]
        lines.append("  " + ", ".join(settings))
        if self.n_iter == 0:
            return "\n".join(lines)
        h = self.history
        rows = [
            ("ELBO F", "elbo"),
            ("entropy sum S", "entropy_sum"),
            ("  posterior entropy", "posterior_entropy"),
            ("  - prior entropy", "prior_entropy"),
            ("  - observable entropy", "observable_entropy"),
        ]
        if np.any(h["data_term"] != 0):
            rows.append(("  + data term", "data_term"))
        rows.append(("gap F - S", "gap"))
        annealed = self.annealed
        if annealed.any():
            first, last = np.flatnonzero(annealed)[[0, -1]] + 1
            lines.append(f"  iterations {first}-{last} annealed (beta_p up to {h['prior_beta'].max():g}, beta_l up to "
                         f"{h['observable_beta'].max():g}): their F and S are the annealed objective, not the ELBO")
        marks = ["*" if annealed[i] else "" for i in (0, -1)]
        lines.append(f"  {'':24s}{'first' + marks[0]:>18s}{'last' + marks[1]:>18s}")
        for label, name in rows:
            lines.append(f"  {label:24s}{h[name][0]:18.10g}{h[name][-1]:18.10g}")
        lines.append(f"  {'|gap| / |F|':24s}{self.relative_gap[0]:18.3e}{self.relative_gap[-1]:18.3e}")
        if any(marks):
            lines.append("  * annealed objective F_beta and entropy sum S_beta, not the ELBO")
        for recovery in self.recoveries:
            lines.append(f"  iteration {recovery['iteration']}: component {recovery['component']} was "
                         f"{recovery['reason']} and was re-seeded at row {recovery['row']} (F and S after that "
                         "M-step differ)")
        lines.append(f"  {'time: setup, iterations':24s}{format_seconds(self.setup_time):>18s}"
                     f"{format_seconds(float(h['time'].sum())):>18s}")
        shown = sorted(set(range(min(3, self.n_iter))) | set(range(max(0, self.n_iter - 3), self.n_iter))
                       | set(np.linspace(0, self.n_iter - 1, 5).astype(int).tolist()))
        lines.append("  iterations:")
        previous = None
        for i in shown:
            if previous is not None and i > previous + 1:
                lines.append("    ...")
            lines.append("    " + self._line({name: h[name][i] for name in FIELDS}))
            previous = i
        return "\n".join(lines)

    def plot(self, axes: Any = None) -> Any:
        """Plot F and S per iteration, and the two convergence signals on a log scale (needs matplotlib).

        The second panel shows ``|F − S| / |F|`` and the change of F between iterations, ``|ΔF|`` (nats per
        sample), with ``gap_tol`` and ``tol`` drawn as dashed lines: where each signal crosses its line, its rule
        is met. It stays informative after F has flattened on the first panel's scale.

        Parameters
        ----------
        axes : sequence of two matplotlib Axes, optional
            Where to draw; a new figure with two panels is made when omitted.

        Returns
        -------
        axes : the two Axes drawn on.
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as error:  # matplotlib is an optional extra
            raise ImportError("ConvergenceMonitor.plot needs matplotlib: pip install 'entrosum[plot]'") from error
        if axes is None:
            _, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        values, signals = axes
        h = self.history
        annealed = self.annealed
        # Annealed iterations are drawn apart: their values are of another objective than the ELBO.
        values.plot(h["iteration"], np.where(annealed, np.nan, h["elbo"]), label="ELBO F")
        values.plot(h["iteration"], np.where(annealed, np.nan, h["entropy_sum"]), "--", label="entropy sum S")
        if annealed.any():
            values.plot(h["iteration"][annealed], h["elbo"][annealed], ":", label="annealed objective F_beta")
            values.axvspan(h["iteration"][annealed].min() - 0.5, h["iteration"][annealed].max() + 0.5, alpha=0.15,
                           color="grey", label="annealing (beta != 1)")
        values.set_xlabel("iteration")
        values.set_ylabel("per sample (nats)")
        values.set_title(f"{self.model} ELBO and entropy sum".strip())
        values.legend()
        relative = self.relative_gap
        positive = relative > 0
        gap_line, = signals.semilogy(h["iteration"][positive], relative[positive], label="|F - S| / |F|")
        change = np.abs(h["change"])
        shown = np.isfinite(change) & (change > 0)
        change_line, = signals.semilogy(h["iteration"][shown], change[shown], label="|change of F|")
        if self.gap_tol is not None:
            signals.axhline(self.gap_tol, linestyle="--", color=gap_line.get_color(), label=f"gap_tol={self.gap_tol:g}")
        if self.tol is not None:
            signals.axhline(self.tol, linestyle="--", color=change_line.get_color(), label=f"tol={self.tol:g}")
        signals.set_xlabel("iteration")
        signals.set_ylabel("log scale")
        signals.set_title(f"convergence signals (stop: {self.stop_reason})")
        signals.legend()
        return axes

    def __repr__(self) -> str:
        """Return a one-line summary: model, iterations, stop reason, final ELBO and gap."""
        return (f"ConvergenceMonitor(model={self.model!r}, n_iter={self.n_iter}, stop_reason={self.stop_reason!r}, "
                f"elbo={self.elbo:.6g}, gap={self.gap:.3g})")
