"""Regression tests of issue 13 (hostile model files, tampered attributes, extreme values): one per defect.

Each of these failed on main before the fix: some crashed the interpreter, so those run in a subprocess and a crash
is a failure of the test, not of the test run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import entrosum
from entrosum import _core

HERE = Path(__file__).resolve().parent


def run_isolated(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (a crash there fails the test instead of killing pytest)."""
    # with the interpreter's own -S (the sanitizer run's), so that the child imports the same build of entrosum
    flags = ["-S"] if sys.flags.no_site else []
    return subprocess.run([sys.executable, *flags, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, cwd=str(HERE))


def quietly(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def data(n=60, d=4, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d))


# -- 1. inconsistent fitted arrays: a ValueError naming the attribute, never a crash or numbers read out of bounds
TAMPERED = [
    # (estimator, attribute, mutation, method)
    ("GaussianMixture(2, random_state=0)", "weights_", "v[:0]", "score_samples"),
    ("GaussianMixture(2, random_state=0)", "weights_", "v[:1]", "score_samples"),
    ("GaussianMixture(2, random_state=0)", "means_", "v[:0]", "predict_proba"),
    ("GaussianMixture(2, random_state=0)", "precisions_cholesky_", "v[:0]", "score_samples"),
    ("GaussianMixture(2, covariance_type='diag', random_state=0)", "precisions_cholesky_", "v[:, :1]", "predict"),
    ("GaussianMixture(2, covariance_type='tied', random_state=0)", "precisions_cholesky_", "v[:1]", "score"),
    ("GaussianMixture(2, covariance_type='spherical', random_state=0)", "covariances_", "v[:1]", "sample"),
    ("BernoulliMixture(2, random_state=0)", "means_", "v[:, :2]", "score_samples"),
    ("PoissonMixture(2, random_state=0)", "weights_", "v[:0]", "predict_proba"),
    ("PPCA(2)", "mean_", "v[:0]", "score_samples"),
    ("PPCA(2)", "components_", "v[:, :1]", "transform"),
    ("FactorAnalysis(2, random_state=0)", "noise_variance_", "v[:1]", "score_samples"),
    ("SparseCoding(2, max_iter=3, random_state=0)", "components_", "v[:0]", "transform"),
    ("SparseCoding(2, max_iter=3, random_state=0)", "scales_", "v[:0]", "transform"),
    ("SparseCoding(2, max_iter=3, random_state=0)", "noise_variance_", "v * 0 - 1", "score"),
]


def test_tampered_fitted_arrays_raise_a_value_error_naming_them():
    cases = json.dumps(TAMPERED)
    result = run_isolated(f"""
        import json, warnings
        import numpy as np
        from entrosum import *
        warnings.simplefilter("ignore")
        rng = np.random.default_rng(0)
        X = rng.normal(size=(60, 4))
        data = {{"Bernoulli": (X > 0).astype(float), "Poisson": rng.poisson(3.0, (60, 4)).astype(float)}}
        for make, name, mutation, method in json.loads({cases!r}):
            Y = next((value for key, value in data.items() if make.startswith(key)), X)
            model = eval(make).fit(Y)
            v = getattr(model, name)
            setattr(model, name, eval(mutation))
            try:
                getattr(model, method)(*(() if method == "sample" else (Y,)))
                print(json.dumps([make, name, "no error"]), flush=True)
            except ValueError as error:
                print(json.dumps([make, name, str(error)]), flush=True)
    """)
    assert result.returncode == 0, result.stderr[-2000:]
    outcomes = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(outcomes) == len(TAMPERED)
    for make, name, message in outcomes:
        assert name in message, (make, name, message)


def test_core_entry_points_check_sizes():
    X = data()
    D = X.shape[1]
    with pytest.raises(ValueError, match="means"):
        _core.gmm_score(X, "diag", np.ones(2) / 2, np.zeros((1, D)), np.ones((2, D)), False)
    with pytest.raises(ValueError, match="weights"):
        _core.gmm_score(X, "diag", np.ones(0), np.zeros((0, D)), np.ones((0, D)), False)
    with pytest.raises(ValueError, match="precision_cholesky"):
        _core.gmm_score(X, "full", np.ones(2) / 2, np.zeros((2, D)), np.ones((D, D)), True)
    with pytest.raises(ValueError, match="means"):
        _core.poisson_mixture_score(X, np.ones(2) / 2, np.ones((2, D + 1)), _core.PoissonSettings(), False)
    with pytest.raises(ValueError, match="mean"):
        _core.linear_gaussian_log_likelihood(X, np.zeros(0), np.zeros((D, 1)), np.ones(D))
    with pytest.raises(ValueError, match="scales"):
        _core.sparse_coding_posterior(X, np.ones((D, 2)), np.ones(1), 1.0, "diag", 1e-8, 10, False)
    with pytest.raises(ValueError, match="sample_weight"):
        _core.kmeans(X, np.ones(3), 2, 0)
    with pytest.raises(ValueError, match="count"):
        _core.random_uniforms(0, -1)
    model = quietly(entrosum.GaussianMixture(2, covariance_type="diag", random_state=0).fit, X)
    steps = model._steps()
    params = model._current_params()
    stats = steps.chunk_statistics(params, X)
    other = quietly(entrosum.GaussianMixture(3, covariance_type="diag", random_state=0).fit, X)
    with pytest.raises(ValueError, match="shape"):
        stats + steps.chunk_statistics(other._current_params(), X)
    with pytest.raises(ValueError):
        steps.m_step(stats, other._current_params())
    state = stats.__getstate__()
    broken = _core.GaussianMixtureExpectation.__new__(_core.GaussianMixtureExpectation)
    with pytest.raises(ValueError):
        broken.__setstate__((state[0], state[1], state[2][:, :1], state[3], state[4]))


def test_closed_form_with_as_many_components_as_features():
    # the C++ closed form took the mean of no discarded eigenvalues (a read out of bounds; a crash in the sanitizer
    # run): σ² is then half the smallest eigenvalue, as the estimator's own full-rank path (numpy) takes it
    result = run_isolated("""
        import numpy as np
        from entrosum import _core
        X = np.random.default_rng(0).normal(size=(40, 3)) * [1.0, 2.0, 3.0]
        print(repr(_core.fit_ppca_closed_form(X, 3)["noise_variance"].tolist()))
        try:
            _core.ppca_closed_form_from_moments(_core.linear_gaussian_moments(X), 4)
        except ValueError as error:
            print(error)
    """)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    X = np.random.default_rng(0).normal(size=(40, 3)) * [1.0, 2.0, 3.0]
    expected = quietly(entrosum.PPCA(3).fit, X).noise_variance_
    np.testing.assert_allclose(eval(lines[0]), np.full(3, expected), rtol=1e-10)
    assert "n_components" in lines[1]


def test_model_file_with_empty_arrays_is_refused_by_both_readers(tmp_path):
    from hostile_models import rewrite

    X = data()
    for model, name in ((entrosum.GaussianMixture(2, random_state=0), "weights_"),
                        (entrosum.GaussianMixture(2, random_state=0), "precisions_cholesky_"),
                        (entrosum.PPCA(2), "mean_"), (entrosum.SparseCoding(2, max_iter=3, random_state=0), "scales_")):
        path = tmp_path / f"{type(model).__name__}_{name}.npz"
        quietly(model.fit, X).save(path)
        rewrite(path, path, arrays={name: np.asarray(getattr(model, name))[:0]})
        with pytest.raises(ValueError, match=name) as error:
            entrosum.load(path)
        assert str(path) in str(error.value)
        with pytest.raises(ValueError, match=name):
            _core.SavedModel(str(path))


# -- 2. load() raises ValueError naming the file for any content ----------------------------------------------
def test_hostile_model_files_raise_value_errors_naming_the_file(tmp_path):
    from hostile_models import write_corpus

    corpus = write_corpus(tmp_path)
    assert len(corpus) >= 30
    for path, problem in corpus.items():
        with pytest.raises(ValueError) as error:
            entrosum.load(path)
        assert str(path) in str(error.value), (problem, str(error.value))


def test_metadata_may_set_only_documented_attributes(tmp_path):
    from hostile_models import rewrite

    path = tmp_path / "model.npz"
    quietly(entrosum.PPCA(2).fit, data()).save(path)
    for name in ("fit", "_online_state", "score_samples", "__class__"):
        target = tmp_path / f"set_{name}.npz"
        rewrite(path, target, metadata=lambda m, name=name: m["fitted"].update({name: {"kind": "int", "value": 1}}))
        with pytest.raises(ValueError, match=f"attribute '{name}'"):
            entrosum.load(target)
    target = tmp_path / "unknown_param.npz"
    rewrite(path, target, metadata=lambda m: m["params"].update({"bogus": 1}))
    with pytest.raises(ValueError, match="'bogus'"):
        entrosum.load(target)


# -- 3. overflow: a clear error (the model unchanged) or a finite model, never NaN parameters ---------------------
@pytest.mark.parametrize("make", ["PPCA(2)", "FactorAnalysis(2, random_state=0)",
                                  "SparseCoding(2, max_iter=5, random_state=0)"])
@pytest.mark.parametrize("dtype, value", [(np.float64, 1e300), (np.float32, 1e30)])
def test_overflowing_data_give_an_error_or_a_finite_model(make, dtype, value):
    X = data().astype(dtype)
    model = quietly(eval(f"entrosum.{make}").fit, X)
    before = {name: np.array(getattr(model, name)) for name in model._fitted_names if name != "e_step_info_"}
    Y = X.copy()
    Y[0, 0] = value
    try:
        quietly(model.fit, Y)
    except ValueError as error:
        assert "scale" in str(error).lower()
        for name, array in before.items():  # a failed fit leaves the model as it was
            np.testing.assert_array_equal(getattr(model, name), array)
        return
    for name in model._fitted_names:
        attribute = getattr(model, name)
        if isinstance(attribute, (np.ndarray, np.generic)):
            assert np.all(np.isfinite(attribute)), name


def test_poisson_responsibilities_sum_to_one_for_huge_float32_counts():
    counts = np.random.default_rng(0).poisson(3.0, (50, 3)).astype(np.float32)
    counts[0, 0] = 1e30
    model = quietly(entrosum.PoissonMixture(2, random_state=0).fit, counts)
    np.testing.assert_allclose(model.predict_proba(counts).sum(axis=1), 1.0, rtol=1e-6)


# -- 4. sample_weight: multiplying all weights by a constant changes nothing ----------------------------------------
@pytest.mark.parametrize("make", ["GaussianMixture(2, random_state=0)",
                                  "GaussianMixture(2, covariance_type='diag', random_state=0)",
                                  "BernoulliMixture(2, random_state=0)", "PoissonMixture(2, random_state=0)"])
@pytest.mark.parametrize("kind", ["uniform", "random"])
def test_sample_weight_is_scale_invariant(make, kind):
    rng = np.random.default_rng(1)
    X = data(80)
    X = {"Bernoulli": (X > 0).astype(float), "Poisson": rng.poisson(2.0, X.shape).astype(float)}.get(
        make.split("(")[0].replace("Mixture", ""), X)
    weights = np.ones(X.shape[0]) if kind == "uniform" else rng.uniform(0.5, 2.0, X.shape[0])
    reference = quietly(eval(f"entrosum.{make}").fit, X, sample_weight=weights)
    for scale in (1e-300, 1e-18, 1e-15, 1e15, 1e300):
        with warnings.catch_warnings():
            warnings.simplefilter("error", entrosum.ComponentRecoveryWarning)  # no false "component is empty"
            warnings.simplefilter("ignore", entrosum.ConvergenceWarning)
            model = eval(f"entrosum.{make}").fit(X, sample_weight=weights * scale)
        np.testing.assert_allclose(model.weights_, reference.weights_, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(model.means_, reference.means_, rtol=1e-9, atol=1e-12)
        assert abs(model.weights_.sum() - 1.0) < 1e-12


# -- 5. mixture weights sum to 1 within numpy's tolerance -------------------------------------------------------------
@pytest.mark.parametrize("n_samples", range(1, 14))
def test_single_component_mixture_samples_on_few_rows(n_samples):
    model = quietly(entrosum.GaussianMixture(1).fit, data(n_samples))
    assert model.weights_.sum() == 1.0
    assert model.sample(3)[0].shape == (3, 4)


@pytest.mark.parametrize("make", ["GaussianMixture(3, random_state=0)", "BernoulliMixture(3, random_state=0)",
                                  "PoissonMixture(3, random_state=0)"])
def test_mixture_weights_sum_to_one(make):
    X = data(7)
    X = {"Bernoulli": (X > 0).astype(float), "Poisson": np.abs(np.round(X * 3))}.get(
        make.split("(")[0].replace("Mixture", ""), X)
    model = quietly(eval(f"entrosum.{make}").fit, X)
    assert abs(model.weights_.sum() - 1.0) <= 2e-16 * len(model.weights_)
    np.random.default_rng(0).multinomial(5, model.weights_)  # numpy's check of pvals
    np.random.default_rng(0).choice(len(model.weights_), p=model.weights_)


# -- 6. every parameter error names the parameter and its limit -------------------------------------------------------
@pytest.mark.parametrize("settings, exception, match", [
    ({"n_jobs": 2**31}, ValueError, "n_jobs must be at most"),
    ({"chunk_size": 2**63}, ValueError, "chunk_size must be at most"),
    ({"max_iter": 2**31}, ValueError, "max_iter must be at most"),
    ({"random_state": -1}, ValueError, "random_state must be None, a non-negative integer"),
])
def test_out_of_range_settings_are_named(settings, exception, match):
    for model in (entrosum.GaussianMixture(2), entrosum.PPCA(2, solver="em"), entrosum.SparseCoding(2)):
        with pytest.raises(exception, match=match):
            model.set_params(**settings).fit(data())


def test_chunks_without_features_are_refused_by_name():
    for model in (entrosum.GaussianMixture(2), entrosum.SparseCoding(2), entrosum.FactorAnalysis(1)):
        with pytest.raises(ValueError, match="0 features"):
            model.fit([np.zeros((5, 0)), np.zeros((5, 0))])


def test_sparse_coding_takes_chunk_iterables():
    X = data(40)
    from_chunks = quietly(entrosum.SparseCoding(2, max_iter=3, random_state=0).fit, [X[:25], X[25:]])
    in_memory = quietly(entrosum.SparseCoding(2, max_iter=3, random_state=0).fit, X)
    np.testing.assert_allclose(from_chunks.components_, in_memory.components_)


def test_impossible_allocations_are_memory_errors_naming_the_parameter():
    with pytest.raises(MemoryError, match="n_components=100000000000000000000"):
        entrosum.SparseCoding(n_components=10**20).fit(data())
    with pytest.raises(MemoryError, match="covariance_type='full'"):
        entrosum.GaussianMixture(1).fit(np.random.default_rng(0).normal(size=(3, 400_000)))
    with pytest.raises(MemoryError, match="precompute=True"):
        entrosum.FactorAnalysis(1, precompute=True).fit(np.random.default_rng(0).normal(size=(3, 400_000)))


# -- 8. saved models get the permissions of any new file -------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_saved_model_permissions_follow_the_umask(tmp_path, umask):
    model = quietly(entrosum.PPCA(2).fit, data())
    previous = os.umask(umask)
    try:
        model.save(tmp_path / "model.npz")
    finally:
        os.umask(previous)
    assert (tmp_path / "model.npz").stat().st_mode & 0o777 == 0o666 & ~umask
    assert [path.name for path in tmp_path.iterdir()] == ["model.npz"]  # no temporary file left
