"""Bad input gets a clear TypeError or ValueError, and a failed fit leaves a fitted model unchanged."""

from __future__ import annotations

import numpy as np
import pytest

import entrosum

from conftest import low_rank

ESTIMATORS = [entrosum.PPCA, entrosum.FactorAnalysis]


@pytest.fixture(scope="module")
def X():
    return low_rank(200, 5, 2, seed=0)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize("bad, error, match", [
    (np.nan, ValueError, r"NaN or infinity \(first in row 17\)"),
    (np.inf, ValueError, r"NaN or infinity \(first in row 17\)"),
    (-np.inf, ValueError, r"NaN or infinity \(first in row 17\)"),
])
def test_non_finite_values(Estimator, X, bad, error, match):
    X = X.copy()
    X[17, 3] = bad
    with pytest.raises(error, match=match):
        Estimator(2).fit(X)
    with pytest.raises(error, match=match):
        Estimator(2).fit(X.astype(np.float32))


# Every in-memory fit path of the two models: the closed form, EM on the moments, EM over the data, the data's own
# covariance (all components) and the noise alone (no component).
FIT_PATHS = [
    (entrosum.PPCA, dict(n_components=2)),
    (entrosum.PPCA, dict(n_components=2, solver="em")),
    (entrosum.PPCA, dict(n_components=2, solver="em", precompute=False)),
    (entrosum.PPCA, dict(n_components=5)),
    (entrosum.FactorAnalysis, dict(n_components=2)),
    (entrosum.FactorAnalysis, dict(n_components=2, precompute=False)),
    (entrosum.FactorAnalysis, dict(n_components=0)),
]


@pytest.mark.parametrize("Estimator, settings", FIT_PATHS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_the_moments_pass_names_the_first_non_finite_row(Estimator, settings, dtype, bad):
    # fit skips the separate NaN scan for these models: their first pass over the data reports the first bad row,
    # also when it lies in another chunk than the second bad row and both threads run.
    X = low_rank(3000, 5, 2, seed=1).astype(dtype)
    X[2222, 1] = bad
    X[2900, 4] = bad
    with pytest.raises(ValueError, match=r"^X contains NaN or infinity \(first in row 2222\); remove or impute"):
        Estimator(**settings, n_jobs=2, chunk_size=256).fit(X)


@pytest.mark.parametrize("Estimator, settings", FIT_PATHS)
def test_fit_reads_the_data_once_to_check_them(Estimator, settings, X, monkeypatch):
    scans = []
    scan = entrosum._core.first_nonfinite_row
    monkeypatch.setattr(entrosum._core, "first_nonfinite_row", lambda *args: scans.append(1) or scan(*args))
    Estimator(**settings).fit(X)
    assert scans == []
    entrosum.GaussianMixture(2).fit(X)  # a model that scans first: the patch does see its scan
    assert scans == [1]


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_data_whose_squares_overflow_are_refused(Estimator, X):
    with pytest.raises(ValueError, match="moments overflow: the sums of squares"):
        Estimator(2).fit(X * 1e200)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_wrong_dimensions(Estimator, X):
    with pytest.raises(ValueError, match=r"must be 2-D .* got 1-D.*reshape"):
        Estimator(2).fit(X[:, 0])
    with pytest.raises(ValueError, match="must be 2-D .* got 3-D"):
        Estimator(2).fit(X[None])
    with pytest.raises(ValueError, match=r"has 0 feature\(s\) \(shape=\(10, 0\)\) while a minimum of 1 is required"):
        Estimator(2).fit(np.empty((10, 0)))


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_too_few_samples(Estimator, X):
    with pytest.raises(ValueError, match="has 1 sample.*at least 2"):
        Estimator(2).fit(X[:1])
    with pytest.raises(ValueError, match="has 0 sample"):
        Estimator(2).fit(X[:0])


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_n_components_at_most_n_features(Estimator, X):
    with pytest.raises(ValueError, match="n_components=6 must be at most n_features=5"):
        Estimator(6).fit(X)
    with pytest.raises(ValueError, match="n_components must be at least 0"):
        Estimator(-1).fit(X)
    with pytest.raises(TypeError, match="n_components must be an integer"):
        Estimator(2.5).fit(X)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_non_numeric_data(Estimator):
    with pytest.raises(TypeError, match="must hold real numbers.*got dtype <U"):
        Estimator(1).fit(np.array([["a", "b"], ["c", "d"], ["e", "f"]]))
    # object arrays are converted as numbers, as scikit-learn converts them; numpy names what is not a number
    with pytest.raises(TypeError, match="argument must be a string or a real number, not 'dict'"):
        Estimator(1).fit(np.array([[1, {"a": 1}], [2, 3], [4, 5]], dtype=object))
    with pytest.raises(ValueError, match=r"NaN or infinity \(first in row 0\)"):  # None is NaN, as in numpy
        Estimator(1).fit(np.array([[1, None], [2, 3], [4, 5]], dtype=object))
    with pytest.raises(ValueError, match="could not convert string to float: 'a'"):
        Estimator(1).fit(np.array([[1, "a"], [2, 3], [4, 5]], dtype=object))
    numbers = np.array([[1, 2.5], [2, 3], [4, 5], [0, 1]], dtype=object)
    np.testing.assert_array_equal(Estimator(1, random_state=0).fit(numbers).mean_,
                                  Estimator(1, random_state=0).fit(numbers.astype(float)).mean_)
    with pytest.raises(ValueError, match="Complex data not supported"):
        Estimator(1).fit(np.ones((4, 2), dtype=complex))
    with pytest.raises(TypeError, match="2-D array of numbers, got str"):
        Estimator(1).fit("data.csv")


@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize("setting, error, match", [
    ({"tol": -1e-3}, ValueError, "tol must be a non-negative finite number"),
    ({"tol": np.nan}, ValueError, "tol must be a non-negative finite number"),
    ({"gap_tol": -1.0}, ValueError, "gap_tol must be a non-negative"),
    ({"tol": "small"}, TypeError, "tol must be a non-negative number or None"),
    ({"max_iter": 0}, ValueError, "max_iter must be at least 1"),
    ({"n_jobs": 0}, ValueError, "n_jobs must be a positive integer, -1 or None"),
    ({"n_jobs": 1.5}, TypeError, "n_jobs must be an integer or None"),
    ({"chunk_size": 0}, ValueError, "chunk_size must be at least 1"),
    ({"precompute": "yes"}, ValueError, "precompute must be one of 'auto', True, False"),
    ({"random_state": "seed"}, TypeError, "random_state must be None, an integer or a numpy Generator"),
])
def test_impossible_settings(Estimator, X, setting, error, match):
    with pytest.raises(error, match=match):
        Estimator(2, **setting).fit(X)


def test_unknown_solver_and_incompatible_settings(X):
    with pytest.raises(ValueError, match="solver must be one of 'auto', 'closed_form', 'em'"):
        entrosum.PPCA(2, solver="svd").fit(X)
    with pytest.raises(ValueError, match="closed_form' needs the covariance"):
        entrosum.PPCA(2, solver="closed_form", precompute=False).fit(X)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_methods_before_fit(Estimator, X):
    model = Estimator(2)
    for method in (model.transform, model.score, model.score_samples):
        with pytest.raises(entrosum.NotFittedError, match="not fitted yet. Call 'fit' with appropriate arguments"):
            method(X)
    with pytest.raises(entrosum.NotFittedError):
        model.sample(3)
    assert issubclass(entrosum.NotFittedError, ValueError) and issubclass(entrosum.NotFittedError, AttributeError)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_different_number_of_features_after_fit(Estimator, X):
    model = Estimator(2).fit(X)
    for method in (model.transform, model.score, model.score_samples):
        with pytest.raises(ValueError, match=f"X has 4 features, but {Estimator.__name__} is expecting 5 features as "
                                             "input"):
            method(X[:, :4])


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_failed_fit_leaves_the_fitted_model_unchanged(Estimator, X):
    model = Estimator(2, random_state=0).fit(X)
    before = {name: np.copy(value) for name, value in vars(model).items() if name.endswith("_")
              and name != "monitor_"}
    monitor = model.monitor_
    bad = X.copy()
    bad[3, 1] = np.nan
    for attempt in (lambda: model.fit(bad), lambda: model.set_params(n_components=9).fit(X),
                    lambda: model.set_params(n_components=2, tol=-1).fit(X)):
        with pytest.raises(ValueError):
            attempt()
    for name, value in before.items():
        np.testing.assert_array_equal(getattr(model, name), value)
    assert model.monitor_ is monitor


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_constant_data_is_a_clear_error(Estimator):
    with pytest.raises(ValueError, match="zero variance in every feature.*Scale the data"):
        Estimator(1).fit(np.ones((10, 3)))


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_integer_and_list_input_are_accepted_as_float64(Estimator, X):
    rounded = np.round(X * 10).astype(np.int64)
    model = Estimator(2, random_state=0).fit(rounded)
    assert model.components_.dtype == np.float64
    reference = Estimator(2, random_state=0).fit(rounded.astype(np.float64))
    np.testing.assert_array_equal(model.components_, reference.components_)
    from_list = Estimator(2, random_state=0).fit(rounded.tolist())
    np.testing.assert_array_equal(from_list.components_, reference.components_)


def test_non_contiguous_input_gives_the_same_fit(X):
    fortran = np.asfortranarray(X)
    strided = np.repeat(X, 2, axis=1)[:, ::2]
    reference = entrosum.FactorAnalysis(2, random_state=0).fit(X)
    for variant in (fortran, strided):
        np.testing.assert_array_equal(entrosum.FactorAnalysis(2, random_state=0).fit(variant).components_,
                                      reference.components_)
