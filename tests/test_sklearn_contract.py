"""The scikit-learn contract beyond check_estimator: its exception classes, data frames and set_output, sparse
input, max_iter=0, warm starts, degenerate starts, and warnings that say what was not met and point at the caller."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
import sklearn.exceptions
import sklearn.mixture

import entrosum

from conftest import low_rank

TRANSFORMERS = [entrosum.PPCA, entrosum.FactorAnalysis, entrosum.SparseCoding]


def test_exceptions_are_scikit_learns_when_it_is_installed():
    assert entrosum.NotFittedError is sklearn.exceptions.NotFittedError
    assert entrosum.ConvergenceWarning is sklearn.exceptions.ConvergenceWarning
    with pytest.raises(sklearn.exceptions.NotFittedError):
        entrosum.GaussianMixture().predict(np.zeros((2, 2)))
    with pytest.warns(sklearn.exceptions.ConvergenceWarning):
        entrosum.GaussianMixture(2, max_iter=1, random_state=0).fit(low_rank(200, 3, 1, seed=1))


def test_without_scikit_learn_entrosum_has_its_own_classes_and_does_not_import_it():
    """In a process where scikit-learn cannot be imported: entrosum's classes, with scikit-learn's bases."""
    code = """
import sys
sys.modules["sklearn"] = None  # import sklearn now raises ImportError
import warnings
import numpy as np
import entrosum
assert entrosum.NotFittedError.__module__ == "entrosum.exceptions", entrosum.NotFittedError
assert issubclass(entrosum.NotFittedError, ValueError) and issubclass(entrosum.NotFittedError, AttributeError)
assert issubclass(entrosum.ConvergenceWarning, UserWarning)
try:
    entrosum.PPCA().transform(np.zeros((3, 4)))
except entrosum.NotFittedError as error:
    assert "not fitted yet" in str(error)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    entrosum.GaussianMixture(2, max_iter=1, random_state=0).fit(np.random.default_rng(0).normal(size=(50, 2)))
assert any(issubclass(w.category, entrosum.ConvergenceWarning) for w in caught)
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
    # and import entrosum alone does not import scikit-learn (about a second)
    result = subprocess.run([sys.executable, "-c", "import sys, entrosum; print('sklearn' in sys.modules)"],
                            capture_output=True, text=True, timeout=300)
    assert result.stdout.strip() == "False", result


@pytest.mark.parametrize("Estimator", [entrosum.GaussianMixture, entrosum.PPCA, entrosum.FactorAnalysis])
def test_data_frames_set_feature_names_and_are_checked_at_predict_time(Estimator):
    X = low_rank(300, 4, 2, seed=3)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    model = Estimator(2, random_state=0).fit(frame)
    np.testing.assert_array_equal(model.feature_names_in_, ["a", "b", "c", "d"])
    np.testing.assert_array_equal(model.score_samples(frame), Estimator(2, random_state=0).fit(X).score_samples(X))
    with pytest.raises(ValueError, match="Feature names must be in the same order as they were in fit"):
        model.score_samples(frame[["b", "a", "c", "d"]])
    with pytest.raises(ValueError, match="Feature names unseen at fit time: e"):
        model.score_samples(frame.rename(columns={"d": "e"}))
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        model.score_samples(X)
    refit = model.fit(X)  # a fit on an array forgets the names
    assert not hasattr(refit, "feature_names_in_")
    with pytest.warns(UserWarning, match="X has feature names, but .* was fitted without feature names"):
        refit.score_samples(frame)


def test_feature_names_are_saved(tmp_path):
    frame = pd.DataFrame(low_rank(200, 3, 1, seed=2), columns=["x", "y", "z"])
    model = entrosum.PPCA(1).fit(frame)
    model.save(tmp_path / "model.npz")
    np.testing.assert_array_equal(entrosum.load(tmp_path / "model.npz").feature_names_in_, ["x", "y", "z"])


@pytest.mark.parametrize("Estimator", TRANSFORMERS)
def test_set_output_pandas(Estimator):
    X = low_rank(200, 5, 2, seed=4)
    frame = pd.DataFrame(X, columns=list("abcde"), index=np.arange(100, 300))
    model = Estimator(2, random_state=0).set_output(transform="pandas")
    codes = model.fit_transform(frame)
    prefix = Estimator.__name__.lower()
    assert isinstance(codes, pd.DataFrame) and list(codes.columns) == [f"{prefix}0", f"{prefix}1"]
    np.testing.assert_array_equal(codes.index, frame.index)
    np.testing.assert_array_equal(codes.to_numpy(), Estimator(2, random_state=0).fit(X).transform(X))
    assert isinstance(model.set_output(transform="default").transform(frame), np.ndarray)
    with pytest.raises(ValueError, match="transform must be one of"):
        model.set_output(transform="arrow")


@pytest.mark.parametrize("make", [lambda X: scipy.sparse.csr_matrix(X), lambda X: scipy.sparse.csc_array(X)])
def test_sparse_input_is_refused_clearly(make):
    X = low_rank(100, 4, 1, seed=5)
    with pytest.raises(TypeError, match=r"sparse input is not supported by X .*X\.toarray\(\)"):
        entrosum.GaussianMixture(2).fit(make(X))
    model = entrosum.PPCA(1).fit(X)
    with pytest.raises(TypeError, match="sparse input is not supported by X"):
        model.transform(make(X))


def test_max_iter_zero_initialises_only():
    X = np.concatenate([np.random.default_rng(0).normal(c, 1.0, (100, 2)) for c in (-5.0, 5.0)])
    means = [[-4.0, -4.0], [4.0, 4.0]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning: initialising only was asked for
        model = entrosum.GaussianMixture(2, means_init=means, max_iter=0, random_state=0).fit(X)
    np.testing.assert_array_equal(model.means_, means)
    assert model.n_iter_ == 0 and not model.converged_ and model.lower_bound_ == -np.inf
    assert model.lower_bounds_.shape == (0,) and model.predict(X).shape == (200,)
    with pytest.raises(ValueError, match="max_iter must be at least 1"):
        entrosum.PPCA(1, solver="em", max_iter=0).fit(X)


def test_warm_start_one_iteration_at_a_time_converges_as_scikit_learn():
    X = np.concatenate([np.random.default_rng(1).normal(c, 1.0, (300, 2)) for c in (-3.0, 3.0)])
    ours = entrosum.GaussianMixture(2, warm_start=True, max_iter=1, tol=1e-4, random_state=0)
    start = ours.set_params(max_iter=0).fit(X)
    theirs = sklearn.mixture.GaussianMixture(2, warm_start=True, max_iter=1, tol=1e-4, weights_init=start.weights_,
                                             means_init=start.means_, precisions_init=start.precisions_)
    ours.set_params(max_iter=1)
    steps = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", entrosum.ConvergenceWarning)
        while not ours.converged_ and steps < 500:
            ours.fit(X)
            theirs.fit(X)
            steps += 1
            assert ours.lower_bound_ == pytest.approx(theirs.lower_bound_, abs=1e-8)
            assert ours.converged_ == theirs.converged_
    assert ours.converged_ and 1 < steps < 500


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_fewer_distinct_rows_than_components_fits_as_scikit_learn(covariance_type):
    """10 rows at 2 distinct values, 10 components: k-means leaves 8 empty, which start as scikit-learn's M-step
    makes them; from the same start the lower bounds equal scikit-learn's to 1e-8."""
    X = np.vstack((np.ones((5, 5)), np.zeros((5, 5))))
    ours = entrosum.GaussianMixture(10, covariance_type=covariance_type, reg_covar=1e-6, random_state=0).fit(X)
    assert ours.converged_ and np.all(np.isfinite(ours.means_))
    start = entrosum.GaussianMixture(10, covariance_type=covariance_type, max_iter=0, random_state=0).fit(X)
    settings = dict(covariance_type=covariance_type, reg_covar=1e-6, tol=0.0, max_iter=5,
                    weights_init=start.weights_ / start.weights_.sum(), means_init=start.means_,
                    precisions_init=start.precisions_)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", entrosum.ConvergenceWarning)
        mine = entrosum.GaussianMixture(10, **settings).fit(X)
        theirs = sklearn.mixture.GaussianMixture(10, **settings).fit(X)
    np.testing.assert_allclose(mine.lower_bounds_, theirs.lower_bounds_, rtol=0, atol=1e-8)
    with pytest.raises(ValueError, match="Fitting the mixture model failed because some components have ill-defined"):
        entrosum.GaussianMixture(10, covariance_type=covariance_type, reg_covar=0.0, random_state=0).fit(X)


def test_convergence_warning_names_the_rule_and_points_at_the_caller():
    X = np.concatenate([np.random.default_rng(2).normal(c, 1.0, (500, 2)) for c in (-3.0, 3.0)])
    with pytest.warns(entrosum.ConvergenceWarning) as caught:
        entrosum.GaussianMixture(2, max_iter=2, tol=1e-12, random_state=0).fit(X)
    message = str(caught[0].message)
    assert "did not converge in max_iter=2 iteration(s): the ELBO still changed by" in message
    assert "(tol=1e-12)" in message and "increase max_iter" in message
    assert caught[0].filename == __file__  # the user's line, not entrosum's
    # a gap held open by reg_covar: more iterations do not help, and the warning says so
    with pytest.warns(entrosum.ConvergenceWarning) as caught:
        entrosum.GaussianMixture(2, covariance_type="diag", reg_covar=0.1, tol=None, gap_tol=1e-12, max_iter=60,
                                 random_state=0).fit_predict(X)
    message = str(caught[0].message)
    assert "held open by reg_covar=0.1" in message and "more iterations will not close it" in message
    assert "increase max_iter" not in message
    assert caught[0].filename == __file__
