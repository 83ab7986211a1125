"""Docstring fragments that several estimators share, written once.

An estimator's docstring names a fragment by a line that holds only ``%(name)s``; :func:`shared_docstring`
replaces that line with the fragment, indented as the marker is. Only these names are replaced, so other
``%`` signs in a docstring stay as they are.
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")

FRAGMENTS = {
    # Parameters of every estimator.
    "stopping": """\
tol : float or None
    Stop when the ELBO per sample changes by less than ``tol`` between iterations; None switches the rule off.
gap_tol : float or None
    Stop when ``|ELBO − entropy sum| / |ELBO| < gap_tol`` (with ``tol`` too, if both are set).""",
    "execution": """\
random_state : int, Generator or None
    Seed of the initialisation.
n_jobs : int or None
    Threads for the passes over the data; None or -1 for all cores.
chunk_size : int or None
    Rows per chunk in those passes; None picks about 1 MiB per chunk, at most 8,192 rows.
verbose : int
    1 shows a progress bar (iteration, F, S and the gap) on stderr, 2 prints the monitor's line per iteration.
learning_offset : float
    t0 of ``partial_fit``'s step size ρ_t = (t + t0)^(-κ) (as in scikit-learn's LatentDirichletAllocation).
learning_decay : float
    κ in (0.5, 1] of that step size; 1 weighs every chunk alike (a running mean).""",
    "fitted": """\
monitor_ : ConvergenceMonitor
    ELBO, entropy sum, its terms and the gap per iteration.
n_iter_, converged_, lower_bound_, lower_bounds_
    As in scikit-learn; ``lower_bounds_`` is the ELBO per sample per iteration.
n_features_in_ : int""",
    # Parameters and attributes of the mixtures.
    "mixture_starts": """\
max_iter : int
    Most EM iterations per start.
n_init : int
    Number of starts; the fit with the highest final ELBO is kept.
init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}
    Initial responsibilities: k-means labels, one-hot on k-means++ seeds, uniform random numbers,
    or one-hot on random rows (scikit-learn's meanings).""",
    "warm_start": """\
warm_start : bool
    Start the next ``fit`` from the current parameters (one start).""",
    "mixture_fitted": """\
converged_, n_iter_, lower_bound_, lower_bounds_
    As in scikit-learn: ``lower_bounds_[t]`` is the mean log-likelihood before the t-th M-step.
monitor_ : ConvergenceMonitor
    ELBO, entropy sum, its terms and the gap per iteration, and the same after each M-step.
n_features_in_ : int""",
}


def shared_docstring(obj: T) -> T:
    """Replace the fragment markers in ``obj.__doc__`` (a class or function) by their fragments."""
    doc = obj.__doc__
    if doc:
        lines = []
        for line in doc.split("\n"):
            marker = line.strip()
            name = marker[2:-2] if marker.startswith("%(") and marker.endswith(")s") else None
            if name is None:
                lines.append(line)
                continue
            if name not in FRAGMENTS:
                raise KeyError(f"no docstring fragment named {name!r}")
            indent = line[:len(line) - len(line.lstrip())]
            lines.extend(indent + text if text else text for text in FRAGMENTS[name].split("\n"))
        obj.__doc__ = "\n".join(lines)
    return obj
