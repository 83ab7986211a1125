"""Generated cases for every estimator's public methods, shared by the fuzzing script and the hypothesis tests.

A case is data (shape, dtype, values with NaN, infinities and extreme magnitudes), sample weights, parameters and
the methods called after ``fit``. ``run_case`` runs it and checks the contract of issue 13: only documented
exceptions (ValueError, TypeError, MemoryError, NotFittedError) with a message, a failed fit leaves a fitted model
unchanged, every successful fit is finite, and inference gives arrays of the documented shapes. A crash of the
interpreter is what the fuzzing script detects around it.
"""

from __future__ import annotations

import io
import math
import pickle
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

import entrosum

#: The estimators (six covariance types of the Gaussian mixture).
GMM_ESTIMATORS = ("gmm_full", "gmm_tied", "gmm_diag", "gmm_spherical", "gmm_tied_diag", "gmm_tied_spherical")
ESTIMATORS = (*GMM_ESTIMATORS, "bernoulli", "poisson", "binomial", "exponential", "gamma", "multinomial",
              "categorical", "mixed", "ppca", "fa", "sparse", "bsc", "sbn", "lvae")
#: The estimators whose fit takes sample weights.
WEIGHTED = (*GMM_ESTIMATORS, "bernoulli", "poisson", "binomial", "exponential", "gamma", "multinomial",
            "categorical", "mixed", "bsc", "sbn")

#: The exceptions the estimators document.
DOCUMENTED = (ValueError, TypeError, MemoryError)


class Chooser:
    """Random choices from a seeded generator; the hypothesis tests pass one that draws from hypothesis instead."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def integer(self, low: int, high: int) -> int:
        return int(self.rng.integers(low, high + 1))

    def choice(self, options: Sequence[Any]) -> Any:
        return options[self.integer(0, len(options) - 1)]

    def unit(self) -> float:
        return float(self.rng.random())


MAGNITUDES = (1.0, 1.0, 1.0, 1e-300, 1e-30, 1e-8, 1e8, 1e30, 1e150, 1e300)
SPECIALS = (np.nan, np.inf, -np.inf, 0.0, -0.0, 1e308, -1e308, 5e-324, 1.0, 3.0)


def make_data(chooser: Chooser, estimator: str, hostile: bool = True) -> Any:
    """Data of a random shape, dtype and content; mostly the kind the estimator models (only that unless hostile)."""
    n_samples = chooser.choice((0, 1, 2, 3, 5, 8, 13, 30, 60) if hostile else (2, 3, 5, 8, 13, 30, 60))
    n_features = chooser.choice((0, 1, 2, 3, 4, 6) if hostile else (1, 2, 3, 4, 6))
    kind = chooser.choice(("model", "model", "model", "normal", "constant", "specials", "extreme") if hostile
                          else ("model", "model", "normal", "constant"))
    seed = chooser.integer(0, 2**31)
    rng = np.random.default_rng(seed)
    shape = (n_samples, n_features)
    if kind == "model" and estimator in ("bernoulli", "sbn"):
        X = (rng.random(shape) < 0.4).astype(np.float64)
    elif kind == "model" and estimator == "poisson":
        X = rng.poisson(chooser.choice((0.1, 2.0, 50.0)), shape).astype(np.float64)
    elif kind == "model" and estimator == "multinomial":
        X = rng.poisson(chooser.choice((0.1, 2.0, 50.0)), shape).astype(np.float64) + chooser.choice((0.0, 1.0))
    elif kind == "model" and estimator == "categorical":
        X = np.minimum(rng.poisson(chooser.choice((0.1, 2.0, 50.0)), shape), 60).astype(np.float64)
    elif kind == "model" and estimator == "binomial":
        X = rng.binomial(20, chooser.choice((0.01, 0.5, 0.99)), shape).astype(np.float64)
    elif kind == "model" and estimator == "gamma":
        X = rng.gamma(chooser.choice((0.05, 1.0, 200.0)), chooser.choice((1e-3, 1.0, 1e3)), shape)
    elif kind == "model" and estimator == "exponential":
        X = rng.exponential(chooser.choice((1e-3, 1.0, 1e3)), shape)
    elif kind == "constant":
        X = np.full(shape, chooser.choice((0.0, 1.0, -2.5, 1e200)))
    elif kind == "specials":
        X = rng.normal(size=shape)
        if X.size:
            X.flat[rng.integers(0, X.size)] = chooser.choice(SPECIALS)
    else:
        X = rng.normal(size=shape) * chooser.choice(MAGNITUDES) + chooser.choice((0.0, 0.0, 1e6, -1e12))
        if kind == "extreme" and X.size:
            X.flat[rng.integers(0, X.size)] = chooser.choice((1e300, -1e300, 1e30, 1e-310, 1e154))
    layout = chooser.choice(("float64", "float64", "float32", "int64", "uint8", "bool", "float16", "object",
                             "complex", "string", "1d", "3d", "list", "fortran", "strided", "chunks", "none")
                            if hostile else ("float64", "float64", "float32", "float32", "fortran", "chunks"))
    with np.errstate(all="ignore"):
        if layout in ("float32", "int64", "uint8", "bool", "float16"):
            return X.astype(layout)
        if layout == "object":
            return X.astype(object)
        if layout == "complex":
            return X.astype(np.complex128)
        if layout == "string":
            return X.astype(str)
        if layout == "1d":
            return X.ravel()
        if layout == "3d":
            return X[None]
        if layout == "list":
            return X.tolist()
        if layout == "fortran":
            return np.asfortranarray(X)
        if layout == "strided":
            return np.repeat(X, 2, axis=1)[:, ::2]
        if layout == "chunks":
            return [X[: n_samples // 2], X[n_samples // 2:]]
        if layout == "none":
            return None
    return X


def make_weights(chooser: Chooser, n_samples: int, hostile: bool = True) -> Any:
    kind = chooser.choice(("none", "none", "none", "uniform", "random", "scaled", "zeros", "negative", "nan",
                           "short", "scalar", "integers", "one_positive") if hostile
                          else ("none", "none", "uniform", "random", "scaled", "integers", "one_positive"))
    rng = np.random.default_rng(chooser.integer(0, 2**31))
    if kind == "none":
        return None
    if kind == "uniform":
        return np.full(n_samples, chooser.choice((1.0, 1e-300, 1e-18, 1e300, 7.0)))
    if kind == "random":
        return rng.uniform(0.0, 3.0, n_samples)
    if kind == "scaled":
        return rng.uniform(0.5, 2.0, n_samples) * chooser.choice((1e-300, 1e-15, 1e15, 1e300))
    if kind == "zeros":
        return np.zeros(n_samples)
    if kind == "negative":
        return -np.ones(n_samples)
    if kind == "nan":
        return np.full(n_samples, np.nan)
    if kind == "short":
        return np.ones(max(n_samples - 1, 0))
    if kind == "scalar":
        return chooser.choice((2.0, 0.0, -1.0))
    if kind == "integers":
        return rng.integers(0, 4, n_samples)
    weights = np.zeros(n_samples)
    if n_samples:
        weights[rng.integers(0, n_samples)] = 1.0
    return weights


def make_params(chooser: Chooser, estimator: str, hostile: bool = True) -> dict[str, Any]:
    """Parameters of the estimator: valid ones, and when hostile sometimes out of range or of the wrong type."""
    params: dict[str, Any] = {}
    params["n_components"] = chooser.choice((1, 1, 2, 2, 3, 4, 0, -1, 10**20, 2.5, None, 50) if hostile
                                            else (1, 1, 2, 2, 3, 4))
    if chooser.unit() < 0.8:
        params["max_iter"] = chooser.choice((0, 1, 2, 5, 10, 20, -1, 2**31, "10") if hostile else (1, 2, 5, 10, 20))
    if not hostile:
        return {**params, "random_state": chooser.integer(0, 5),
                **({"covariance_type": estimator[4:]} if estimator.startswith("gmm") else {}),
                **({"n_trials": 20} if estimator == "binomial" else {}),
                **({"max_iter": chooser.choice((1, 2, 5))} if estimator in ("sparse", "bsc", "sbn") else {})}
    if chooser.unit() < 0.3:
        params["tol"] = chooser.choice((None, 0.0, 1e-3, -1.0, math.nan, "x"))
    if chooser.unit() < 0.2:
        params["gap_tol"] = chooser.choice((None, 1e-6, -1.0, math.inf))
    if chooser.unit() < 0.3:
        params["random_state"] = chooser.choice((0, 1, None, -1, 2**40, np.random.default_rng(3), "seed"))
    else:
        params["random_state"] = 0
    if chooser.unit() < 0.2:
        params["n_jobs"] = chooser.choice((1, 2, -1, None, 0, 2**31, 1.5))
    if chooser.unit() < 0.2:
        params["chunk_size"] = chooser.choice((1, 2, 7, None, 0, 2**62, 2**63))
    if chooser.unit() < 0.1:
        params["verbose"] = chooser.choice((0, False, -1))
    if estimator.startswith("gmm"):
        params["covariance_type"] = estimator[4:]
        if chooser.unit() < 0.3:
            params["reg_covar"] = chooser.choice((0.0, 1e-6, 1.0, -1.0, 1e300))
        if chooser.unit() < 0.15:
            params["learn_weights"] = chooser.choice((False, True, "no"))
    if estimator == "categorical" and chooser.unit() < 0.3:
        params["n_levels"] = chooser.choice((None, 61, 1, 0, -1, 2.5, 2**40, "x", [61] * 3, math.nan))
    if estimator == "binomial":
        params["n_trials"] = chooser.choice((20, 20, 20, 1, 3, 0, -1, 2.5, 2**60, "x", [20] * 3, math.nan))
    if estimator == "mixed":
        params["families"] = chooser.choice((None, None, {"poisson": [0]}, {"gaussian": [0], "poisson": [1, 2]},
                                             {"categorical": [0, 1, 2, 3, 4, 5]}, "gaussian=0;gamma=1", [0], "x"))
        if chooser.unit() < 0.3:
            params["reg_covar"] = chooser.choice((0.0, 1e-6, -1.0, math.nan))
        if chooser.unit() < 0.2:
            params["n_levels"] = chooser.choice((None, 2, 0, [3], {0: 4}, "x"))
    if estimator in (*GMM_ESTIMATORS, "bernoulli", "poisson", "binomial", "exponential", "gamma", "multinomial",
                     "categorical", "mixed"):
        if chooser.unit() < 0.3:
            params["init_params"] = chooser.choice(("kmeans", "k-means++", "random", "random_from_data", "bogus"))
        if chooser.unit() < 0.15:
            params["n_init"] = chooser.choice((1, 2, 0))
        if chooser.unit() < 0.1:
            params["warm_start"] = True
    if estimator == "bernoulli" and chooser.unit() < 0.3:
        params["alpha"] = chooser.choice((0.0, 0.5, -1.0, math.inf))
    if estimator in ("ppca", "fa") and chooser.unit() < 0.4:
        params["precompute"] = chooser.choice(("auto", True, False, "maybe"))
    if estimator == "ppca" and chooser.unit() < 0.4:
        params["solver"] = chooser.choice(("auto", "closed_form", "em", "bogus"))
    if estimator == "ppca" and chooser.unit() < 0.1:
        params["whiten"] = True
    if estimator == "fa" and chooser.unit() < 0.2:
        params["rotation"] = chooser.choice((None, "varimax", "quartimax", "bogus"))
    if estimator == "sparse":
        params["max_iter"] = chooser.choice((1, 2, 5, 8)) if chooser.unit() < 0.9 else params.get("max_iter", 5)
        if chooser.unit() < 0.3:
            params["posterior"] = chooser.choice(("diag", "full", "bogus"))
        if chooser.unit() < 0.2:
            params["solver"] = chooser.choice(("em", "gradient"))
        if chooser.unit() < 0.2:
            params["annealing"] = chooser.choice((None, "default", [2.0, 1.0], [0.5], "bogus"))
        if chooser.unit() < 0.2:
            params["e_step_max_iter"] = chooser.choice((1, 5, 0, 2**31))
        if chooser.unit() < 0.1:
            params["acceleration"] = "quasi-newton"
    if estimator in ("bsc", "sbn"):
        params["max_iter"] = chooser.choice((1, 2, 5, 8)) if chooser.unit() < 0.9 else params.get("max_iter", 5)
        if chooser.unit() < 0.5:
            params["posterior"] = chooser.choice(("exact", "truncated", "truncated", "bogus"))
        if chooser.unit() < 0.4:
            params["n_states"] = chooser.choice((1, 2, 4, 8, 0, -3, 2**40, 2.5))
    return params


CLASSES = {"gmm": "GaussianMixture", "bernoulli": "BernoulliMixture", "poisson": "PoissonMixture",
           "binomial": "BinomialMixture", "exponential": "ExponentialMixture", "gamma": "GammaMixture",
           "multinomial": "MultinomialMixture", "categorical": "CategoricalMixture", "mixed": "MixedMixture",
           "ppca": "PPCA", "fa": "FactorAnalysis", "sparse": "SparseCoding",
           "bsc": "BinarySparseCoding", "sbn": "SigmoidBeliefNet",
           "lvae": "LinearVAE"}


def make_case(chooser: Chooser, estimator: str) -> dict[str, Any]:
    hostile = chooser.unit() < 0.5
    X = make_data(chooser, estimator, hostile)
    if isinstance(X, np.ndarray):
        n_samples = X.shape[0] if X.ndim else 0
    elif isinstance(X, list) and X and isinstance(X[0], np.ndarray):  # chunks
        n_samples = sum(len(chunk) for chunk in X)
    else:
        n_samples = len(X) if isinstance(X, list) else 0
    weights = make_weights(chooser, n_samples, hostile) if estimator in WEIGHTED else None
    return {"estimator": estimator, "X": X, "sample_weight": weights,
            "params": make_params(chooser, estimator, hostile), "refit": chooser.unit() < 0.3,
            "new_data": make_data(chooser, estimator) if chooser.unit() < 0.3 else None}


def _state(model: Any) -> bytes:
    return pickle.dumps({name: value for name, value in sorted(vars(model).items())
                         if name.endswith("_") and not name.startswith("_") and name != "monitor_"})


def _check_exception(error: BaseException, where: str) -> None:
    not_fitted = entrosum.NotFittedError
    if isinstance(error, not_fitted):
        return
    if not isinstance(error, DOCUMENTED):
        raise AssertionError(f"{where}: undocumented {type(error).__name__}: {error}") from error
    if not str(error).strip():
        raise AssertionError(f"{where}: {type(error).__name__} without a message") from error
    if isinstance(error, MemoryError) and "std::bad_alloc" in str(error):
        raise AssertionError(f"{where}: a bare std::bad_alloc") from error


def _check_finite(model: Any, where: str) -> None:
    for name in type(model)._fitted_names:
        value = getattr(model, name, None)
        if isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind == "f":
            if not np.all(np.isfinite(value)):
                raise AssertionError(f"{where}: fitted {name} is not finite")


def _fit(model: Any, case: dict[str, Any], X: Any) -> bool:
    """Fit; False when a documented exception refused it (checked), True when it succeeded."""
    try:
        if case["sample_weight"] is None:
            model.fit(X)
        else:
            model.fit(X, sample_weight=case["sample_weight"])
        return True
    except Exception as error:  # noqa: BLE001 - every exception is checked against the documented ones
        _check_exception(error, "fit")
        return False


def run_case(case: dict[str, Any]) -> str:
    """Run one case; return 'fitted' or 'refused', or raise AssertionError when the contract is broken."""
    estimator = case["estimator"]
    cls = getattr(entrosum, CLASSES[estimator.split("_")[0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = cls(**case["params"])
        except Exception as error:  # noqa: BLE001
            _check_exception(error, "__init__")
            return "refused"
        previous = None
        if case["refit"]:  # a fitted model whose next fit may fail: it must stay as it was
            reference = cls(**{**case["params"], "n_components": 1, "max_iter": 3}).set_params(random_state=0)
            base = np.random.default_rng(0).poisson(1.0, (20, 3)).astype(float)
            if estimator in ("bernoulli", "sbn"):
                base = np.minimum(base, 1.0)
            elif estimator in ("exponential", "gamma"):
                base = base + 0.5
            elif estimator == "multinomial":
                base = base + 1.0
            try:
                model = reference.fit(base)
                model.set_params(**case["params"])
                previous = _state(model)
            except Exception as error:  # noqa: BLE001
                _check_exception(error, "reference fit")
                model = cls(**case["params"])
        X = case["X"]
        if not _fit(model, case, X):
            if previous is not None and _state(model) != previous:
                raise AssertionError("a failed fit changed the fitted model")
            return "refused"
        _check_finite(model, "fit")
        new = case["new_data"] if case["new_data"] is not None else X
        methods = ["score_samples", "score", "predict_proba", "predict", "transform", "sample", "bic",
                   "predict_posterior", "partial_fit", "save"]
        for method in methods:
            if not hasattr(model, method):
                continue
            try:
                if method == "sample":
                    result = model.sample(3)
                elif method == "save":
                    stream = io.BytesIO()
                    import tempfile
                    from pathlib import Path
                    with tempfile.TemporaryDirectory() as directory:
                        path = Path(directory) / "model.npz"
                        model.save(path)
                        loaded = entrosum.load(path)
                        stream.write(path.read_bytes())
                    if _state(loaded).__len__() == 0:
                        raise AssertionError("load gave an empty model")
                    continue
                elif method == "partial_fit":
                    before = _state(model)
                    try:
                        model.partial_fit(new)
                    except Exception:
                        if _state(model) != before:
                            raise AssertionError("a failed partial_fit changed the model") from None
                        raise
                    _check_finite(model, "partial_fit")
                    continue
                else:
                    result = getattr(model, method)(new)
            except AssertionError:
                raise
            except Exception as error:  # noqa: BLE001
                _check_exception(error, method)
                continue
            _check_result(model, method, result, new)
    return "fitted"


def _check_result(model: Any, method: str, result: Any, X: Any) -> None:
    n_samples = X.shape[0] if isinstance(X, np.ndarray) and X.ndim == 2 else None
    if method in ("score_samples", "predict") and n_samples is not None:
        if np.shape(result) != (n_samples,):
            raise AssertionError(f"{method} gave shape {np.shape(result)} for {n_samples} samples")
    if method == "predict_proba" and n_samples is not None:
        proba = np.asarray(result)
        if proba.shape[0] != n_samples:
            raise AssertionError(f"predict_proba gave shape {proba.shape}")
        if proba.size and np.all(np.isfinite(proba)) and not np.allclose(proba.sum(axis=1), 1.0, atol=1e-5):
            raise AssertionError("predict_proba rows do not sum to 1")
    if method == "sample":
        draws = result[0] if isinstance(result, tuple) else result
        if np.shape(draws) != (3, model.n_features_in_):
            raise AssertionError(f"sample gave shape {np.shape(draws)}")
