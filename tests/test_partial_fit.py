"""partial_fit: stepwise EM over a stream of chunks, for every model."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import entrosum

WEIGHTS = np.array([0.5, 0.3, 0.2])
MEANS = np.array([[0.0, 0.0], [5.0, 5.0], [-5.0, 5.0]])
SCALES = np.array([1.0, 0.5, 0.8])


def _gmm_stream(rng: np.random.Generator, n: int) -> np.ndarray:
    labels = rng.choice(3, n, p=WEIGHTS)
    return MEANS[labels] + SCALES[labels, None] * rng.standard_normal((n, 2))


def test_gaussian_mixture_stream_converges_to_the_generating_mixture():
    rng = np.random.default_rng(0)
    gmm = entrosum.GaussianMixture(3, covariance_type="spherical", random_state=0)
    for _ in range(150):
        gmm.partial_fit(_gmm_stream(rng, 400))
    order = np.argsort(gmm.weights_)[::-1]
    np.testing.assert_allclose(gmm.weights_[order], WEIGHTS, atol=0.02)
    np.testing.assert_allclose(gmm.means_[order], MEANS, atol=0.05)
    np.testing.assert_allclose(gmm.covariances_[order], SCALES**2, rtol=0.05)
    # one record per chunk; the running statistics' M-step is exact: F = S after it, to rounding + reg_covar
    assert gmm.n_iter_ == 150 and gmm.monitor_.history["elbo"].shape == (150,)
    assert gmm.monitor_.stop_reason == "partial_fit" and not gmm.converged_
    h = gmm.monitor_.history
    assert np.max(np.abs(h["m_step_elbo"] - h["m_step_entropy_sum"])[5:]) < 1e-4
    # the per-chunk ELBO approaches the generating mixture's mean log-likelihood
    truth = entrosum.GaussianMixture(3, covariance_type="spherical", weights_init=WEIGHTS, means_init=MEANS,
                                     precisions_init=1 / SCALES**2, max_iter=1, tol=None)
    test = _gmm_stream(rng, 20_000)
    with pytest.warns(entrosum.ConvergenceWarning):
        truth.fit(test)
    assert gmm.score(test) == pytest.approx(truth.score(test), abs=0.01)


def test_ppca_stream_converges_to_the_generating_model():
    rng = np.random.default_rng(1)
    W = rng.standard_normal((10, 2))

    def draw(n):
        return rng.standard_normal((n, 2)) @ W.T + 0.3 * rng.standard_normal((n, 10)) + 1.0

    ppca = entrosum.PPCA(2, random_state=0, learning_decay=0.9)
    for _ in range(100):
        ppca.partial_fit(draw(400))
    covariance = W @ W.T
    learned = ppca.components_.T @ ppca.components_
    assert np.linalg.norm(learned - covariance) / np.linalg.norm(covariance) < 0.03
    assert ppca.noise_variance_ == pytest.approx(0.09, rel=0.05)
    np.testing.assert_allclose(ppca.mean_, 1.0, atol=0.05)


def test_learning_decay_one_is_the_running_mean_of_the_statistics():
    # κ = 1, t0 = 1: ρ_t = 1/(t + 1), the running statistics are the plain mean over chunks; for PPCA, whose
    # statistics are the moments, two equal-sized chunks then give the closed form of their union's moments
    # followed by EM steps -- the mean is exactly the data mean.
    rng = np.random.default_rng(2)
    X = rng.standard_normal((600, 5)) @ rng.standard_normal((5, 5))
    ppca = entrosum.PPCA(2, learning_offset=1.0, learning_decay=1.0)
    for chunk in np.split(X, 3):
        ppca.partial_fit(chunk)
    np.testing.assert_allclose(ppca.mean_, X.mean(axis=0), rtol=1e-12, atol=1e-12)


MODELS = [
    (entrosum.GaussianMixture, {"n_components": 2, "covariance_type": "full"}, "gauss"),
    (entrosum.BernoulliMixture, {"n_components": 2}, "binary"),
    (entrosum.PoissonMixture, {"n_components": 2}, "counts"),
    (entrosum.BinomialMixture, {"n_components": 2, "n_trials": 9}, "trials"),
    (entrosum.ExponentialMixture, {"n_components": 2}, "positive"),
    (entrosum.GammaMixture, {"n_components": 2}, "positive"),
    (entrosum.MixedMixture, {"n_components": 2, "families": {"gaussian": [0, 1], "poisson": [2, 3],
                                                             "categorical": [4], "gamma": [5]}}, "mixed"),
    (entrosum.MultinomialMixture, {"n_components": 2}, "word_counts"),
    (entrosum.CategoricalMixture, {"n_components": 2, "n_levels": 4}, "codes"),
    (entrosum.PPCA, {"n_components": 2}, "gauss"),
    (entrosum.FactorAnalysis, {"n_components": 2}, "gauss"),
    (entrosum.SparseCoding, {"n_components": 2, "posterior": "full"}, "gauss"),
    (entrosum.BinarySparseCoding, {"n_components": 2}, "gauss"),
    (entrosum.BinarySparseCoding, {"n_components": 3, "posterior": "truncated", "n_states": 3}, "gauss"),
    (entrosum.SigmoidBeliefNet, {"n_components": 2}, "binary"),
    (entrosum.SigmoidBeliefNet, {"n_components": 3, "posterior": "truncated", "n_states": 3}, "binary"),
]


MODEL_IDS = [cls.__name__ + params.get("posterior", "") for cls, params, _ in MODELS]


def _data(kind: str, rng: np.random.Generator, n: int) -> np.ndarray:
    if kind == "binary":
        return (rng.random((n, 6)) < np.linspace(0.1, 0.9, 6)).astype(np.float64)
    if kind == "counts":
        return rng.poisson(np.linspace(1, 6, 6), (n, 6)).astype(np.float64)
    if kind == "trials":
        return rng.binomial(9, np.linspace(0.1, 0.9, 6), (n, 6)).astype(np.float64)
    if kind == "codes":
        return np.minimum(rng.poisson(np.linspace(0.2, 3, 6), (n, 6)), 3).astype(np.float64)
    if kind == "word_counts":
        return rng.poisson(np.linspace(1, 6, 6), (n, 6)).astype(np.float64) + 1.0
    if kind == "positive":
        return rng.exponential(np.linspace(0.5, 6, 6), (n, 6))
    if kind == "mixed":
        return np.column_stack([rng.standard_normal((n, 2)), rng.poisson(3.0, (n, 2)), rng.integers(0, 3, n),
                                rng.exponential(2.0, n)]).astype(np.float64)
    return rng.standard_normal((n, 3)) @ rng.standard_normal((3, 6)) + 0.3 * rng.standard_normal((n, 6))


@pytest.mark.parametrize(("cls", "params", "kind"), MODELS, ids=MODEL_IDS)
def test_partial_fit_works_for_every_model(cls, params, kind):
    rng = np.random.default_rng(3)
    model = cls(random_state=0, **params)
    chunks = [_data(kind, rng, 200) for _ in range(6)]
    for chunk in chunks:
        assert model.partial_fit(chunk) is model
    assert model.n_iter_ == 6 and np.all(np.isfinite(model.monitor_.history["elbo"]))
    score = model.score(np.concatenate(chunks))
    assert np.isfinite(score)
    # the first call initialises as fit does: same random_state, same start
    again = cls(random_state=0, **params).partial_fit(chunks[0])
    first = cls(random_state=0, **params).partial_fit(chunks[0])
    assert again.monitor_.history["elbo"][0] == first.monitor_.history["elbo"][0]
    # float32 stays float32; pickling keeps the running state
    copy = pickle.loads(pickle.dumps(model))
    copy.partial_fit(chunks[0].astype(np.float32))
    model.partial_fit(chunks[0])
    assert copy.n_iter_ == 7
    assert copy.score(chunks[1]) == pytest.approx(model.score(chunks[1]), rel=1e-4)


@pytest.mark.parametrize(("cls", "params", "kind"), MODELS, ids=MODEL_IDS)
def test_failed_partial_fit_leaves_the_model_as_it_was(cls, params, kind):
    rng = np.random.default_rng(4)
    model = cls(random_state=0, **params).partial_fit(_data(kind, rng, 100))
    before = {name: value.copy() if isinstance(value, np.ndarray) else value for name, value in vars(model).items()}
    bad = _data(kind, rng, 50)
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.partial_fit(bad)
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(_data(kind, rng, 50)[:, :4])
    with pytest.raises(TypeError):
        model.partial_fit(np.array([["a"] * 6] * 3))
    for name, value in vars(model).items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, before[name])
        else:
            assert value is before[name], name


def test_fit_resets_and_partial_fit_continues_a_fit():
    rng = np.random.default_rng(5)
    X = _gmm_stream(rng, 2000)
    gmm = entrosum.GaussianMixture(3, random_state=0).fit(X)
    fitted_means = gmm.means_.copy()
    gmm.partial_fit(_gmm_stream(rng, 500))  # continues from the fitted parameters
    assert gmm.n_iter_ == 1
    np.testing.assert_allclose(np.sort(gmm.means_, axis=0), np.sort(fitted_means, axis=0), atol=0.3)
    gmm.partial_fit(_gmm_stream(rng, 500))
    assert gmm.n_iter_ == 2
    gmm.fit(X)  # starts afresh: the next partial_fit starts a new stream from the fit
    refit = gmm.n_iter_
    gmm.partial_fit(_gmm_stream(rng, 500))
    assert gmm.n_iter_ == 1 and refit > 1


@pytest.mark.parametrize(("offset", "decay", "error"), [(-1.0, 0.7, "learning_offset"), (10.0, 0.5, "learning_decay"),
                                                        (10.0, 1.5, "learning_decay")])
def test_step_size_parameters_are_validated(offset, decay, error):
    with pytest.raises(ValueError, match=error):
        entrosum.PPCA(2, learning_offset=offset, learning_decay=decay).partial_fit(np.eye(5))


def test_sparse_coding_partial_fit_needs_em():
    with pytest.raises(ValueError, match="solver='em'"):
        entrosum.SparseCoding(2, solver="gradient").partial_fit(np.random.default_rng(0).standard_normal((20, 4)))
