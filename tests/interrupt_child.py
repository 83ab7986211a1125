"""Run by test_interrupt.py in a subprocess: for each case named on the command line, prepares a fit that would
run for a long time, prints ``ready CASE``, runs it until the parent's SIGINT stops it, and prints how it ended
as one JSON line."""

from __future__ import annotations

import json
import pickle
import signal
import sys
import warnings
from pathlib import Path

import numpy as np

import entrosum

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import model_cases  # noqa: E402

ENDLESS = {"tol": None, "max_iter": 10**9}  # no stopping rule: EM runs until interrupted
#: Plain EM for sparse coding: its quasi-Newton steps (the default) end where their line search finds no increase.
ENDLESS_OF = {"sparse": {"acceleration": None}}


def fitted_state(model) -> bytes:
    """Every fitted attribute (names ending in an underscore), pickled."""
    return pickle.dumps({name: value for name, value in sorted(vars(model).items())
                         if name.endswith("_") and not name.startswith("_")})


def prepare(case: str):
    """(estimator, data, previously fitted state or None) for one case."""
    cases = model_cases()
    if case in cases:  # EM that never stops, on the small data of the case
        make, data = cases[case]
        return make().set_params(**ENDLESS, **ENDLESS_OF.get(case, {})), data, None
    if case == "ppca_em_streamed":
        make, data = cases["ppca_em"]
        return make().set_params(precompute=False, **ENDLESS), data, None
    if case == "gmm_kmeans_init":  # k-means++ and Lloyd on unclustered data: a long initialisation
        data = np.random.default_rng(0).random((300_000, 8))
        return entrosum.GaussianMixture(64, covariance_type="diag", random_state=0), data, None
    if case.startswith("refit_"):  # a fitted model whose next fit is interrupted
        make, data = cases[case[len("refit_"):]]
        model = make().set_params(max_iter=5)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(data)
        return model.set_params(**ENDLESS), data, fitted_state(model)
    if case == "ppca_closed_form_wide":  # one quick pass, then a long eigendecomposition (3000 x 3000: its
        # tridiagonalisation takes seconds even where only the top eigenpairs are computed)
        data = np.random.default_rng(0).standard_normal((50, 3000))
        return entrosum.PPCA(2, solver="closed_form"), data, None
    if case in ("sparse_full_large", "partial_fit_sparse_full"):  # long per-point Newton E-steps (issue 13: 2.2 s)
        data = np.random.default_rng(0).laplace(size=(200_000, 16))
        return entrosum.SparseCoding(16, posterior="full", random_state=0, **ENDLESS), data, None
    if case == "sparse_quasi_newton":  # EM's quasi-Newton steps (the default), by then past the 15 EM iterations
        rng = np.random.default_rng(0)
        atoms = rng.standard_normal((10, 25))
        data = rng.laplace(size=(4_000, 10)) @ atoms + 0.1 * rng.standard_normal((4_000, 25))
        return entrosum.SparseCoding(10, posterior="full", random_state=0, **ENDLESS), data, None
    if case == "partial_fit_gmm":  # one long stepwise-EM update
        data = np.random.default_rng(0).standard_normal((400_000, 16))
        return entrosum.GaussianMixture(32, covariance_type="full", random_state=0), data, None
    raise ValueError(f"unknown case {case}")


def main() -> None:
    # Python's own Ctrl-C handler, even when this process inherited SIGINT ignored (started from a background job)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for case in sys.argv[1:]:
        model, data, previous = prepare(case)
        print(f"ready {case}", flush=True)
        try:
            (model.partial_fit if case.startswith("partial_fit") else model.fit)(data)
            outcome = "finished"
        except KeyboardInterrupt:
            outcome = "interrupted"
        state = fitted_state(model)
        if previous is None:
            state_ok = state == fitted_state(type(model)())  # no fitted attribute at all
        else:
            state_ok = state == previous  # the previous fit, untouched
        print(json.dumps({"case": case, "outcome": outcome, "state_ok": state_ok}), flush=True)


if __name__ == "__main__":
    main()
