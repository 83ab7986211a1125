"""Binary latents beyond one array in memory: the chunk-level steps against the C++ fit, partial_fit (stepwise EM),
iterables of chunks, and the statistics' merging and pickling."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import entrosum
from entrosum import _core
from entrosum.engine.stepwise import run_em

pytestmark = pytest.mark.filterwarnings("ignore:.*did not converge")

MODELS = {"bsc": entrosum.BinarySparseCoding, "sbn": entrosum.SigmoidBeliefNet}


def generated(kind: str, n: int, seed: int, strength: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """n rows of a model with 3 binary causes (π = 0.3) over 8 features; returns (X, the causes' patterns).

    A sigmoid belief net's features are on with probability S(strength · [a cause of theirs is on] − strength / 2).
    """
    rng = np.random.default_rng(seed)
    patterns = np.zeros((3, 8))
    patterns[0, :3] = patterns[1, 3:6] = patterns[2, [0, 6, 7]] = 1.0
    Z = (rng.random((n, 3)) < 0.3).astype(float)
    if kind == "bsc":
        return Z @ (2.0 * patterns) + 0.25 * rng.standard_normal((n, 8)), patterns
    activation = strength * (np.minimum(Z @ patterns, 1.0) - 0.5)
    return (rng.random((n, 8)) < 1.0 / (1.0 + np.exp(-activation))).astype(np.float64), patterns


def cosines(components: np.ndarray, patterns: np.ndarray) -> np.ndarray:
    """For each pattern, the largest |cosine| with a learned cause."""
    unit = components / np.linalg.norm(components, axis=1, keepdims=True)
    return np.abs(unit @ (patterns / np.linalg.norm(patterns, axis=1, keepdims=True)).T).max(axis=0)


@pytest.mark.parametrize("posterior", ["exact", "truncated"])
@pytest.mark.parametrize("kind", ["bsc", "sbn"])
def test_em_over_merged_block_statistics_equals_the_cpp_fit(kind, posterior):
    # The steps run on uneven blocks with their global row offsets, the statistics merged: the same EM as the C++
    # loop over the whole array, kept states and proposal streams included. (Mild activations: on nearly
    # deterministic data the sigmoid belief net's weights grow without bound and Newton's stopping point amplifies
    # the rounding of the merged sums.)
    X, _ = generated(kind, 700, seed=1, strength=3.0)
    # (newton_tol: the sigmoid belief net's M-step runs Newton to the last digits, so that rounding in the merged sums
    # cannot move its stopping point)
    model = MODELS[kind](3, posterior=posterior, n_states=4, max_iter=15, tol=None, random_state=0,
                         **({"newton_tol": 1e-15} if kind == "sbn" else {})).fit(X)
    settings = model._check_settings(X)
    rng = np.random.default_rng(0)
    mean = X.mean(axis=0)
    initial = model._initial_params(mean, ((X - mean) ** 2).mean(axis=0), 3, rng)
    steps = model._steps(settings, int(rng.integers(0, 2 ** 63)))
    bounds = [0, 130, 131, 402, 700]
    kept = [None] * 4
    calls = []

    def statistics_of(params):
        total = None
        for b in range(4):
            stats, kept[b] = steps.block(params, X[bounds[b]:bounds[b + 1]], None, kept[b], len(calls), bounds[b])
            total = stats if total is None else total + stats
        calls.append(1)
        return total

    params, monitor = run_em(steps, statistics_of, initial, model._stop_options())
    np.testing.assert_allclose(params["components"].T, model.components_, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(params["prior"], model.prior_, rtol=1e-9)
    history = model.monitor_.history
    np.testing.assert_allclose(monitor.history["elbo"], history["elbo"], rtol=1e-11)
    np.testing.assert_allclose(monitor.history["entropy_sum"], history["entropy_sum"], rtol=1e-11)


@pytest.mark.parametrize("kind", ["bsc", "sbn"])
def test_first_partial_fit_is_one_em_iteration(kind):
    # Stepwise EM's first update replaces the (empty) running statistics by the chunk's: one EM iteration of fit.
    X, _ = generated(kind, 400, seed=2)
    stepwise = MODELS[kind](3, random_state=5).partial_fit(X)
    one = MODELS[kind](3, max_iter=1, tol=None, random_state=5).fit(X)
    for name in ("components_", "offset_", "prior_"):
        np.testing.assert_allclose(getattr(stepwise, name), getattr(one, name), rtol=1e-9, atol=1e-11, err_msg=name)
    assert stepwise.monitor_.history["elbo"][0] == pytest.approx(one.monitor_.history["elbo"][0], rel=1e-12)
    assert stepwise.n_iter_ == 1 and stepwise.monitor_.stop_reason == "partial_fit"


@pytest.mark.parametrize("posterior", ["exact", "truncated"])
@pytest.mark.parametrize("kind", ["bsc", "sbn"])
def test_partial_fit_on_a_stream_recovers_the_causes(kind, posterior):
    X, patterns = generated(kind, 2000, seed=99)
    reference = MODELS[kind](3, posterior="exact", n_init=3, random_state=0).fit(X)
    best = 0.0
    for seed in range(3):  # EM for binary causes has local optima; a few starts, as n_init does for fit
        rng = np.random.default_rng(3)
        model = MODELS[kind](3, posterior=posterior, n_states=4, random_state=seed, learning_decay=0.6)
        for _ in range(50):
            model.partial_fit(generated(kind, 200, seed=int(rng.integers(1 << 30)))[0])
        found = cosines(model.components_, patterns).min()
        if found > best:
            best, score = found, model.score(X)
    assert best > 0.95
    # the streamed model explains new data at least nearly as well as a batch fit of them
    assert score > reference.score(X) - 0.01 * abs(reference.score(X))
    h = model.monitor_.history
    assert model.n_iter_ == 50 and np.all(np.isfinite(h["elbo"]))
    if kind == "bsc":  # the closed-form M-step on the running statistics: F = S after it
        np.testing.assert_allclose(h["m_step_elbo"], h["m_step_entropy_sum"], rtol=1e-9)


def test_partial_fit_takes_sample_weights_and_continues_a_fit():
    X, _ = generated("bsc", 300, seed=4)
    weights = np.random.default_rng(0).uniform(0.5, 2.0, 300)
    weighted = entrosum.BinarySparseCoding(3, random_state=0).partial_fit(X, sample_weight=weights)
    repeated = entrosum.BinarySparseCoding(3, random_state=0).partial_fit(X, sample_weight=2 * weights)
    np.testing.assert_allclose(weighted.components_, repeated.components_, rtol=1e-10)  # scale-invariant
    fitted = entrosum.BinarySparseCoding(3, max_iter=40, random_state=0).fit(X)
    before = fitted.components_.copy()
    fitted.partial_fit(X)
    assert fitted.n_iter_ == 1
    np.testing.assert_allclose(fitted.components_, before, atol=0.2)  # a small step from the fitted model


def test_sbn_partial_fit_refuses_non_binary_chunks_and_keeps_the_model():
    X, _ = generated("sbn", 200, seed=5)
    model = entrosum.SigmoidBeliefNet(3, random_state=0).partial_fit(X)
    before = model.components_.copy()
    bad = X.copy()
    bad[7, 2] = 0.5
    with pytest.raises(ValueError, match="binary"):
        model.partial_fit(bad)
    np.testing.assert_array_equal(model.components_, before)
    assert model.n_iter_ == 1


@pytest.mark.parametrize("kind", ["bsc", "sbn"])
def test_an_iterable_of_chunks_fits_as_the_array(kind):
    X, _ = generated(kind, 500, seed=6)
    model = MODELS[kind](3, posterior="truncated", n_states=4, max_iter=20, random_state=0)
    reference = model.fit(X).components_.copy()
    np.testing.assert_array_equal(model.fit([X[:123], X[123:400], X[400:]]).components_, reference)
    np.testing.assert_array_equal(model.fit(lambda: iter(np.array_split(X, 7))).components_, reference)


@pytest.mark.parametrize("kind", ["bsc", "sbn"])
def test_statistics_merge_pickle_and_refuse_mismatches(kind):
    X, _ = generated(kind, 300, seed=7)
    model = MODELS[kind](3, posterior="truncated", n_states=4, max_iter=3, random_state=0).fit(X)
    steps = model._steps(model._check_settings(X), 11)
    params = model._params()
    whole, states = steps.block(params, X, None, None, 0, 0)
    first, states_a = steps.block(params, X[:100], None, None, 0, 0)
    second, states_b = steps.block(params, X[100:], None, None, 0, 100)
    np.testing.assert_array_equal(np.concatenate([states_a, states_b]), states)  # streams of global rows
    merged = pickle.loads(pickle.dumps(first)) + pickle.loads(pickle.dumps(second))
    assert merged.count == whole.count == 300
    assert merged.free_energy == pytest.approx(whole.free_energy, rel=1e-13)
    terms, expected = steps.terms(merged, params), steps.terms(whole, params)
    assert terms["elbo"] == pytest.approx(expected["elbo"], rel=1e-12)
    # the kept states carry over: a second E-step from them never lowers any point's free energy sum
    again, _ = steps.block(params, X, None, states, 1, 0)
    assert again.free_energy >= whole.free_energy - 1e-12
    with pytest.raises(ValueError, match="states"):
        steps.block(params, X, None, states[:5], 1, 0)
    duplicated = states.copy()
    duplicated[3, 1] = duplicated[3, 0]
    with pytest.raises(ValueError, match="twice"):
        steps.block(params, X, None, duplicated, 1, 0)
    with pytest.raises(ValueError, match="beyond n_components"):
        steps.block(params, X, None, states | np.uint64(1 << 40), 1, 0)
    other = MODELS[kind](2, posterior="exact", max_iter=2, random_state=0).fit(X[:, :5])
    small, _ = other._steps(other._check_settings(X), 0).block(other._params(), X[:, :5], None, None, 0, 0)
    with pytest.raises(ValueError, match="shape|features"):
        whole + small
    with pytest.raises(ValueError):
        steps.terms(small, params)
    assert isinstance(whole, (_core.BinarySparseCodingStats, _core.SigmoidBeliefNetStats))
