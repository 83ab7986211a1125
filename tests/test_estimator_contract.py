"""The scikit-learn estimator contract: parameters, clone, pickling, fit/transform API."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import entrosum

from conftest import low_rank

ESTIMATORS = [entrosum.PPCA, entrosum.FactorAnalysis]
#: Every estimator with n_components, transform and score, for the parts of the contract they all share.
ALL_ESTIMATORS = [*ESTIMATORS, entrosum.SparseCoding]


@pytest.fixture(scope="module")
def X():
    return low_rank(300, 6, 2, seed=9)


@pytest.mark.parametrize("Estimator", ALL_ESTIMATORS)
def test_init_stores_parameters_and_get_set_params(Estimator):
    model = Estimator(3, tol=1e-6, random_state=4)
    params = model.get_params()
    assert params["n_components"] == 3 and params["tol"] == 1e-6 and params["random_state"] == 4
    assert model.set_params(max_iter=7) is model and model.max_iter == 7
    with pytest.raises(ValueError, match="Invalid parameter 'n_factors'"):
        model.set_params(n_factors=2)
    assert repr(model) == f"{Estimator.__name__}(max_iter=7, n_components=3, random_state=4, tol=1e-06)"


@pytest.mark.parametrize("Estimator", ALL_ESTIMATORS)
def test_clone_gives_an_unfitted_copy(Estimator, X):
    model = Estimator(2, random_state=1).fit(X)
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert not hasattr(copy, "components_")
    np.testing.assert_array_equal(copy.fit(X).components_, model.components_)


@pytest.mark.parametrize("Estimator", ALL_ESTIMATORS)
def test_pickle_round_trip(Estimator, X):
    model = Estimator(2, random_state=1).fit(X)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.components_, model.components_)
    np.testing.assert_array_equal(restored.transform(X), model.transform(X))
    assert restored.score(X) == model.score(X)
    np.testing.assert_array_equal(restored.monitor_.history["elbo"], model.monitor_.history["elbo"])
    assert restored.monitor_.stop_reason == model.monitor_.stop_reason


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_fitted_attributes(Estimator, X):
    model = Estimator(2, random_state=1).fit(X)
    assert model.components_.shape == (2, 6)
    assert model.mean_.shape == (6,)
    np.testing.assert_allclose(model.mean_, X.mean(axis=0), rtol=1e-12)
    assert model.n_features_in_ == 6
    assert isinstance(model.monitor_, entrosum.ConvergenceMonitor)
    assert model.n_iter_ == model.monitor_.n_iter == len(model.lower_bounds_)
    assert isinstance(model.converged_, bool) and model.converged_
    if Estimator is entrosum.PPCA:
        assert np.ndim(model.noise_variance_) == 0
    else:
        assert model.noise_variance_.shape == (6,)
    np.testing.assert_allclose(model.get_precision() @ model.get_covariance(), np.eye(6), atol=1e-10)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_score_is_mean_of_score_samples(Estimator, X):
    model = Estimator(2, random_state=1).fit(X)
    samples = model.score_samples(X)
    assert samples.shape == (300,) and samples.dtype == np.float64
    assert model.score(X) == pytest.approx(samples.mean(), rel=1e-14)


@pytest.mark.parametrize("Estimator", ALL_ESTIMATORS)
def test_works_inside_a_scikit_learn_pipeline(Estimator, X):
    pipeline = make_pipeline(StandardScaler(), Estimator(2, random_state=0)).fit(X)
    assert pipeline.transform(X).shape == (300, 2)
    assert np.isfinite(pipeline.score(X))
