"""Empty and collapsed mixture components are re-seeded at a worst-explained sample instead of failing, in every
mixture and in float32 and float64; the recovery is reported (a warning naming the component and iteration, the
monitor's ``recoveries``), and the entropy-sum identity shows that M-step was not the exact one."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

import entrosum
from entrosum import _core
from entrosum.engine.steps import merge
from entrosum.engine.stepwise import run_em
from entrosum.mixtures.steps import DiscreteMixtureSteps, GaussianMixtureSteps


def blobs(seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [4.0, 4.0, 4.0], [-3.0, 1.0, -2.0]])
    labels = rng.integers(0, 3, 600)
    return centres[labels] + rng.standard_normal((600, 3))


def far_start(X):
    """Two components on two of the three clusters, the third a million away from every sample: no
    responsibility reaches it, and the third cluster's samples are the worst explained."""
    return dict(means_init=np.array([[0.0, 0.0, 0.0], [4.0, 4.0, 4.0], [1e6, 1e6, 1e6]]), precisions_init=np.ones(3),
                weights_init=np.full(3, 1.0 / 3.0))


def log_likelihood_under(X, weights, means, variances):
    """log p(x_n) of a spherical Gaussian mixture by scipy."""
    parts = [np.log(w) + multivariate_normal(m, v * np.eye(X.shape[1])).logpdf(X)
             for w, m, v in zip(weights, means, variances)]
    return logsumexp(np.stack(parts, axis=1), axis=1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_an_empty_gaussian_component_is_reseeded_at_the_worst_explained_sample(dtype):
    X = blobs().astype(dtype)
    start = far_start(X)
    model = entrosum.GaussianMixture(3, covariance_type="spherical", tol=1e-6, max_iter=200, **start)
    with pytest.warns(entrosum.ComponentRecoveryWarning, match="component 2 was empty .* at iteration 1"):
        model.fit(X)
    (recovery,) = model.monitor_.recoveries
    assert recovery["component"] == 2 and recovery["iteration"] == 1 and recovery["reason"] == "empty"
    # The sample it went to is the one the starting mixture explains worst (scipy's log-likelihoods). In float32
    # the first E-step's log-densities are taken about the mean of the starting means, a third of a million away
    # from the data, so only float64 can tell which of the third cluster's samples is worst.
    scores = log_likelihood_under(X.astype(np.float64), start["weights_init"], start["means_init"], np.ones(3))
    if dtype == np.float64:
        assert recovery["row"] == int(np.argmin(scores))
    assert model.converged_ and np.isfinite(model.lower_bound_)
    assert np.all(np.isfinite(model.means_)) and model.weights_.min() > 0.05  # the component lives again
    # That M-step was not the exact one: F and S after it differ, unlike the M-steps before and after it.
    h = model.monitor_.history
    gaps = np.abs(h["m_step_elbo"] - h["m_step_entropy_sum"])
    assert gaps[0] > 1e-3 and gaps[1:].max() < 1e-5
    # scikit-learn fits the same data from the same start; it keeps its third component at a weight of 1e-16,
    # while the re-seeded mixture finds the three clusters and a higher likelihood.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = SklearnGaussianMixture(3, covariance_type="spherical", tol=1e-6, max_iter=200, **start).fit(X)
    assert reference.weights_.min() < 1e-10
    assert model.score(X) > reference.score(X) + 0.1


def test_chunked_em_recovers_like_the_in_memory_fit():
    """The worst samples merge across chunks in row order: the same re-seeding as one pass over all rows."""
    X = blobs(1)
    start = far_start(X)
    params = {"weights": start["weights_init"], "means": start["means_init"], "covariances": np.ones((3, 1)),
              "precision_cholesky": np.ones((3, 1))}
    stop = _core.StopOptions(tol=1e-9, max_iter=30)
    reference = _core.gmm_fit(X, np.empty(0), "spherical", dict(params), 1e-6, stop, 2, 64, None)
    steps = GaussianMixtureSteps("spherical", 1e-6)

    def statistics_of(current):
        chunks = np.array_split(X, 7)
        offsets = np.cumsum([0] + [len(c) for c in chunks[:-1]])
        return merge([pickle.loads(pickle.dumps(steps.chunk_statistics(current, chunk, row_offset=int(offset))))
                      for chunk, offset in zip(chunks, offsets)])

    fitted, monitor = run_em(steps, statistics_of, params, stop)
    assert monitor.recoveries == reference["recoveries"]
    assert [r[:2] for r in monitor.recoveries] == [(1, 2)]
    np.testing.assert_allclose(fitted["means"], reference["means"], rtol=0, atol=1e-9)


def test_a_collapsed_component_is_reseeded_with_the_pooled_covariance():
    """reg_covar=0 and a component on one repeated point: its covariance is singular; it is re-seeded."""
    X = blobs(2)
    X = np.concatenate([X, np.repeat([[10.0, 10.0, 10.0]], 5, axis=0)])
    means = np.array([[0.0, 0.0, 0.0], [4.0, 4.0, 4.0], [-3.0, 1.0, -2.0], [10.0, 10.0, 10.0]])
    model = entrosum.GaussianMixture(4, covariance_type="diag", reg_covar=0.0, means_init=means,
                                     precisions_init=np.ones((4, 3)), weights_init=np.full(4, 0.25), max_iter=5,
                                     tol=None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X)
    messages = [str(w.message) for w in caught if w.category is entrosum.ComponentRecoveryWarning]
    # The first M-step leaves it a little of the other samples' responsibility; the second collapses it.
    assert "component 3 collapsed (its covariance was singular) at iteration 2" in messages[0]
    first = model.monitor_.recoveries[0]
    assert (first["component"], first["iteration"], first["reason"]) == (3, 2, "collapsed")
    assert np.all(np.isfinite(model.covariances_)) and np.all(model.covariances_ > 0)


def test_collapse_of_every_component_is_still_an_error_that_names_reg_covar():
    X = np.repeat(blobs()[:2], 25, axis=0)  # two distinct points, two components: nothing to pool from
    with pytest.raises(ValueError, match="component 0 has collapsed.*reg_covar"):
        entrosum.GaussianMixture(2, reg_covar=0.0, random_state=0).fit(X)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("family", ["bernoulli", "poisson"])
def test_an_empty_discrete_component_is_reseeded(family, dtype):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 800)
    if family == "bernoulli":
        X = (rng.random((800, 30)) < np.array([0.3, 0.7])[labels, None]).astype(dtype)
        dead = np.full(30, 1e-300)  # ~-690 per one seen: no row keeps any responsibility
        estimator = entrosum.BernoulliMixture
        means = np.stack([np.full(30, 0.3), np.full(30, 0.7), dead])
    else:
        X = rng.poisson(np.array([2.0, 8.0])[labels, None], (800, 6)).astype(dtype)
        estimator = entrosum.PoissonMixture
        means = np.stack([np.full(6, 2.0), np.full(6, 8.0), np.full(6, 1e5)])  # -1e5 per feature
    model = estimator(3, means_init=means, weights_init=np.full(3, 1.0 / 3.0), tol=1e-5, max_iter=300)
    with pytest.warns(entrosum.ComponentRecoveryWarning, match="component 2 was empty .* at iteration 1"):
        model.fit(X)
    assert model.monitor_.recoveries[0]["component"] == 2
    assert np.all(np.isfinite(model.means_)) and np.all(np.isfinite(model.weights_))
    assert abs(model.weights_.sum() - 1.0) < 1e-6


def test_partial_fit_reports_a_recovery():
    X = blobs(4)
    start = far_start(X)
    model = entrosum.GaussianMixture(3, covariance_type="spherical", **start)
    with pytest.warns(entrosum.ComponentRecoveryWarning, match="component 2 was empty"):
        model.partial_fit(X)
    assert np.all(np.isfinite(model.means_))


def test_discrete_chunk_statistics_carry_their_worst_samples_through_pickling():
    rng = np.random.default_rng(5)
    X = rng.poisson(3.0, (200, 4)).astype(np.float64)
    params = {"weights": np.full(2, 0.5), "means": np.array([[3.0] * 4, [1e5] * 4])}
    steps = DiscreteMixtureSteps("poisson_mixture")
    whole = steps.chunk_statistics(params, X)
    chunks = np.array_split(X, 3)
    offsets = np.cumsum([0] + [len(c) for c in chunks[:-1]])
    parts = merge([pickle.loads(pickle.dumps(steps.chunk_statistics(params, c, row_offset=int(o))))
                   for c, o in zip(chunks, offsets)])
    updated = steps.m_step(parts, params, parts)
    assert updated["recovered"] == steps.m_step(whole, params, whole)["recovered"]
    assert updated["recovered"][0][0] == 1
