"""MixedMixture: each family's log-density against scipy.stats and a row as their sum, the entropy-sum theorem at
every M-step with every family and the data term, recovery of a known mixed table, a single-family model against
the family's own estimator, DataFrame column names, float32, threads and chunks, sample weights, saving, and bad
input naming its column."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from scipy import stats
from scipy.special import gammaln, logsumexp
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score

import entrosum

# The generating mixture: 3 components over 9 columns of every family.
FAMILIES = {"gaussian": [0, 1], "bernoulli": [2], "poisson": [3, 4], "binomial": [5], "categorical": [6],
            "exponential": [7], "gamma": [8]}
N_TRIALS = 10
WEIGHTS = np.array([0.5, 0.3, 0.2])
GAUSS_MEANS = np.array([[-4.0, 0.0], [0.0, 5.0], [5.0, -3.0]])
GAUSS_SDS = np.array([[1.0, 0.5], [0.7, 1.5], [1.2, 1.0]])
BERNOULLI = np.array([0.1, 0.5, 0.9])
POISSON = np.array([[1.0, 20.0], [8.0, 2.0], [25.0, 10.0]])
BINOMIAL = np.array([0.1, 0.5, 0.85])
CATEGORICAL = np.array([[0.7, 0.1, 0.1, 0.1], [0.05, 0.8, 0.1, 0.05], [0.1, 0.1, 0.1, 0.7]])
EXPONENTIAL = np.array([0.5, 3.0, 10.0])  # means
GAMMA_SHAPES = np.array([2.0, 10.0, 5.0])
GAMMA_MEANS = np.array([1.0, 6.0, 20.0])


def mixed_data(n, seed):
    rng = np.random.default_rng(seed)
    labels = rng.choice(3, size=n, p=WEIGHTS)
    X = np.empty((n, 9))
    X[:, :2] = rng.normal(GAUSS_MEANS[labels], GAUSS_SDS[labels])
    X[:, 2] = rng.random(n) < BERNOULLI[labels]
    X[:, 3:5] = rng.poisson(POISSON[labels])
    X[:, 5] = rng.binomial(N_TRIALS, BINOMIAL[labels])
    X[:, 6] = [rng.choice(4, p=CATEGORICAL[k]) for k in labels]
    X[:, 7] = rng.exponential(EXPONENTIAL[labels])
    X[:, 8] = rng.gamma(GAMMA_SHAPES[labels], GAMMA_MEANS[labels] / GAMMA_SHAPES[labels])
    return X, labels


@pytest.fixture(scope="module")
def data():
    return mixed_data(1200, seed=1)


@pytest.fixture(scope="module")
def X(data):
    return data[0]


def block_log_densities(model, X):
    """(n, K, D) log p(x_nd | k) of each column from scipy.stats, for the fitted parameters of `model`."""
    X = np.asarray(X, dtype=np.float64)
    families = model.column_families_
    K, D = model.means_.shape
    out = np.empty((X.shape[0], K, D))
    means = model.means_.astype(np.float64)
    columns = {name: np.flatnonzero(families == name) for name in set(families)}
    for k in range(K):
        for j, d in enumerate(columns.get("gaussian", [])):
            out[:, k, d] = stats.norm.logpdf(X[:, d], means[k, d], np.sqrt(model.variances_[k, j]))
        for d in columns.get("bernoulli", []):
            out[:, k, d] = stats.bernoulli.logpmf(X[:, d], means[k, d])
        for d in columns.get("poisson", []):
            out[:, k, d] = stats.poisson.logpmf(X[:, d], means[k, d])
        for j, d in enumerate(columns.get("binomial", [])):
            n = model.n_trials_[j]
            out[:, k, d] = stats.binom.logpmf(X[:, d], n, means[k, d] / n)
        start = 0
        for j, d in enumerate(columns.get("categorical", [])):
            levels = int(model.n_levels_[j])
            p = model.probabilities_[k, start:start + levels]
            out[:, k, d] = np.log(p[X[:, d].astype(int)])  # the categorical density: indexing
            start += levels
        for d in columns.get("exponential", []):
            out[:, k, d] = stats.expon.logpdf(X[:, d], scale=means[k, d])
        for j, d in enumerate(columns.get("gamma", [])):
            shape = model.shapes_[k, j]
            out[:, k, d] = stats.gamma.logpdf(X[:, d], shape, scale=means[k, d] / shape)
    return out


def true_means():
    """(3, 9) E[x_d | k] of the generating mixture."""
    means = np.empty((3, 9))
    means[:, :2] = GAUSS_MEANS
    means[:, 2] = BERNOULLI
    means[:, 3:5] = POISSON
    means[:, 5] = N_TRIALS * BINOMIAL
    means[:, 6] = CATEGORICAL @ np.arange(4)
    means[:, 7] = EXPONENTIAL
    means[:, 8] = GAMMA_MEANS
    return means


def set_true_parameters(model):
    """Overwrite a fitted model's parameters with the generating ones (same layout as FAMILIES)."""
    model.weights_ = WEIGHTS.copy()
    model.means_ = true_means()
    model.variances_ = GAUSS_SDS**2
    model.shapes_ = GAMMA_SHAPES[:, None].copy()
    model.probabilities_ = CATEGORICAL.copy()
    return model


@pytest.mark.parametrize("family", ["gaussian", "bernoulli", "poisson", "binomial", "categorical", "exponential",
                                    "gamma"])
def test_each_family_block_against_scipy(X, family):
    """One family's columns alone, one component: score_samples is the sum of scipy's log-densities."""
    columns = FAMILIES[family]
    block = X[:, columns]
    model = entrosum.MixedMixture(2, {family: list(range(len(columns)))}, n_trials=N_TRIALS, random_state=0).fit(block)
    joint = np.log(model.weights_) + block_log_densities(model, block).sum(axis=2)
    np.testing.assert_allclose(model.score_samples(block), logsumexp(joint, axis=1), rtol=1e-12, atol=1e-12)


def test_a_row_is_the_sum_of_its_columns_and_the_mixture_their_log_sum_exp(X):
    model = set_true_parameters(entrosum.MixedMixture(3, FAMILIES, n_trials=N_TRIALS, max_iter=0).fit(X))
    per_column = block_log_densities(model, X)  # (n, K, D)
    joint = np.log(WEIGHTS) + per_column.sum(axis=2)
    np.testing.assert_allclose(model.score_samples(X), logsumexp(joint, axis=1), rtol=1e-12)
    np.testing.assert_allclose(model.predict_proba(X), np.exp(joint - logsumexp(joint, axis=1, keepdims=True)),
                               atol=1e-12)
    n_parameters = 3 * (2 * 2 + 1 + 2 + 1 + 3 + 1 + 2) + 2
    assert model.bic(X) == pytest.approx(-2 * logsumexp(joint, axis=1).sum() + n_parameters * np.log(len(X)),
                                         rel=1e-12)


def test_entropy_sum_equals_elbo_after_every_m_step_with_every_family(X):
    """F(q_old, Θ_new) = S(q_old, Θ_new) to 1e-10 after every M-step, the data term (Poisson −log x!, binomial
    log C(n, x)) included. reg_covar=0 makes the Gaussian M-step exact: with σ² = mean(x²) − μ² the expected
    log-density is −N ½ log(2πe σ²), which is −N times the entropy; a positive reg_covar would leave a gap."""
    model = entrosum.MixedMixture(3, FAMILIES, n_trials=N_TRIALS, reg_covar=0.0, tol=None, max_iter=25,
                                  init_params="random", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", entrosum.ConvergenceWarning)
        model.fit(X)
    h = model.monitor_.history
    np.testing.assert_allclose(h["m_step_elbo"], h["m_step_entropy_sum"], rtol=0, atol=1e-10)
    assert abs(h["gap"][0]) > 1e-3  # before the first M-step the identity does not hold
    # the data term is the mean of log h(x) over the Poisson and binomial columns
    log_binomial = gammaln(N_TRIALS + 1) - gammaln(X[:, 5] + 1) - gammaln(N_TRIALS - X[:, 5] + 1)
    data_term = np.mean(-gammaln(X[:, 3:5] + 1).sum(axis=1) + log_binomial)
    np.testing.assert_allclose(h["data_term"], data_term, rtol=1e-12)
    assert np.all(np.diff(h["elbo"]) > -1e-12)  # EM never lowers the log-likelihood


def test_reg_covar_leaves_a_gap_of_its_order(X):
    model = entrosum.MixedMixture(3, FAMILIES, n_trials=N_TRIALS, reg_covar=1e-2, tol=1e-10, max_iter=500,
                                  random_state=0).fit(X)
    gap = model.monitor_.history["m_step_elbo"][-1] - model.monitor_.history["m_step_entropy_sum"][-1]
    assert 1e-6 < abs(gap) < 1e-1


def test_recovers_a_well_separated_mixed_table():
    X, labels = mixed_data(3000, seed=5)
    model = entrosum.MixedMixture(3, FAMILIES, n_trials=N_TRIALS, tol=1e-8, n_init=3, random_state=0).fit(X)
    assert adjusted_rand_score(labels, model.predict(X)) >= 0.95
    order = np.argsort(model.means_[:, 0])  # components by their first Gaussian mean, as generated
    np.testing.assert_allclose(model.weights_[order], WEIGHTS, atol=0.03)
    np.testing.assert_allclose(model.probabilities_[order], CATEGORICAL, atol=0.06)
    np.testing.assert_allclose(model.shapes_[order, 0], GAMMA_SHAPES, rtol=0.25)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # both stop at max_iter alike
@pytest.mark.parametrize("family, estimator, columns, kwargs", [
    ("poisson", entrosum.PoissonMixture, [3, 4], {}),
    ("bernoulli", entrosum.BernoulliMixture, [2], {}),
    ("binomial", entrosum.BinomialMixture, [5], {"n_trials": N_TRIALS}),
    ("exponential", entrosum.ExponentialMixture, [7], {}),
    ("gamma", entrosum.GammaMixture, [8], {}),
])
def test_a_single_family_equals_its_own_estimator(X, family, estimator, columns, kwargs):
    block = np.ascontiguousarray(X[:, columns])
    common = dict(tol=1e-8, max_iter=200, random_state=3)
    mixed = entrosum.MixedMixture(3, {family: list(range(len(columns)))}, **kwargs, **common).fit(block)
    alone = estimator(3, **kwargs, **common).fit(block)
    assert mixed.n_iter_ == alone.n_iter_
    np.testing.assert_allclose(mixed.lower_bounds_, alone.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(mixed.weights_, alone.weights_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(mixed.means_, alone.means_, rtol=1e-10, atol=1e-12)
    if family == "gamma":
        np.testing.assert_allclose(mixed.shapes_, alone.shapes_, rtol=1e-10)
    for field in ("entropy_sum", "data_term", "observable_entropy"):
        np.testing.assert_allclose(mixed.monitor_.history[field], alone.monitor_.history[field], rtol=1e-10,
                                   atol=1e-12)


def test_a_gaussian_block_equals_the_diagonal_gaussian_mixture(X):
    block = np.ascontiguousarray(X[:, :2])
    start = dict(weights_init=[0.3, 0.3, 0.4], means_init=GAUSS_MEANS)
    mixed = entrosum.MixedMixture(3, None, reg_covar=1e-6, tol=1e-10, max_iter=300, **start).fit(block)
    gmm = entrosum.GaussianMixture(3, covariance_type="diag", reg_covar=1e-6, tol=1e-10, max_iter=300,
                                   **start).fit(block)
    # the starts differ in their variances (a pass of the labels here), so compare the optimum reached
    np.testing.assert_allclose(np.sort(mixed.means_, axis=0), np.sort(gmm.means_, axis=0), rtol=1e-5, atol=1e-6)
    assert mixed.lower_bound_ == pytest.approx(gmm.lower_bound_, rel=1e-7)


def test_data_frame_column_names_equal_indices(X):
    pd = pytest.importorskip("pandas")
    names = [f"c{d}" for d in range(9)]
    frame = pd.DataFrame(X, columns=names)
    by_name = {family: [names[d] for d in columns] for family, columns in FAMILIES.items()}
    kwargs = dict(n_trials={"c5": N_TRIALS}, tol=1e-6, random_state=0)
    named = entrosum.MixedMixture(3, by_name, **kwargs).fit(frame)
    indexed = entrosum.MixedMixture(3, FAMILIES, n_trials=N_TRIALS, tol=1e-6, random_state=0).fit(X)
    np.testing.assert_array_equal(named.feature_names_in_, names)
    np.testing.assert_array_equal(named.means_, indexed.means_)
    np.testing.assert_array_equal(named.score_samples(frame), indexed.score_samples(X))
    with pytest.raises(ValueError, match="'nope', which is not a column of X"):
        entrosum.MixedMixture(3, {**by_name, "gaussian": ["c0", "nope"]}, n_trials=N_TRIALS).fit(frame)


def test_column_order_within_a_family_and_per_column_constants(X):
    """A family's columns may come in any order; n_trials and n_levels per column follow that order."""
    a = entrosum.MixedMixture(2, {"gaussian": [1, 0], "binomial": [3, 2], "categorical": [4]},
                              n_trials=[20, 10], n_levels=[6], random_state=0)
    b = entrosum.MixedMixture(2, {"gaussian": [0, 1], "binomial": [2, 3], "categorical": [4]},
                              n_trials={2: 10, 3: 20}, n_levels={4: 6}, random_state=0)
    table = np.column_stack([X[:, :2], X[:, 5], 2 * X[:, 5], X[:, 6]])
    a.fit(table)
    b.fit(table)
    np.testing.assert_array_equal(a.n_trials_, [10.0, 20.0])
    np.testing.assert_array_equal(a.n_levels_, [6])
    assert a.probabilities_.shape == (2, 6)
    np.testing.assert_array_equal(a.means_, b.means_)


def test_float32_agrees_with_float64(X):
    kwargs = dict(n_trials=N_TRIALS, tol=1e-6, max_iter=300, random_state=0)  # float32's F is noisy below ~1e-7
    double = entrosum.MixedMixture(3, FAMILIES, **kwargs).fit(X)
    single = entrosum.MixedMixture(3, FAMILIES, **kwargs).fit(X.astype(np.float32))
    assert single.means_.dtype == np.float32 and single.probabilities_.dtype == np.float32
    np.testing.assert_allclose(single.weights_, double.weights_, rtol=1e-4)
    np.testing.assert_allclose(single.means_, double.means_, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(single.variances_, double.variances_, rtol=1e-4)
    assert single.lower_bound_ == pytest.approx(double.lower_bound_, rel=1e-6)


def test_gaussian_columns_far_from_zero_keep_their_variances_in_float32(X):
    """The Gaussian statistics are taken about the model's mean (x − c, (x − c)²), so a column at 1e4 ± 1 keeps its
    variance in float32, where x² would have lost it (float32 holds 7 digits, x² needs 8 to show σ²)."""
    shifted = X[:, :3].copy()
    shifted[:, 0] += 1e4
    families = {"gaussian": [0, 1], "bernoulli": [2]}
    kwargs = dict(tol=1e-6, max_iter=300, random_state=0)
    double = entrosum.MixedMixture(3, families, **kwargs).fit(shifted)
    single = entrosum.MixedMixture(3, families, **kwargs).fit(shifted.astype(np.float32))
    np.testing.assert_allclose(single.variances_, double.variances_, rtol=1e-3)
    np.testing.assert_allclose(single.means_, double.means_, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.sort(double.variances_[:, 0]), np.sort(GAUSS_SDS[:, 0] ** 2), rtol=0.2)


def test_chunks_and_threads_do_not_change_the_fit(X):
    fits = [entrosum.MixedMixture(3, FAMILIES, n_trials=N_TRIALS, tol=1e-8, random_state=2, chunk_size=c,
                                  n_jobs=j).fit(X) for c, j in ((7, 1), (len(X), 1), (64, 2), (64, 1))]
    for other in fits:
        assert other.n_iter_ == fits[1].n_iter_
        np.testing.assert_allclose(other.lower_bounds_, fits[1].lower_bounds_, rtol=1e-12)
        np.testing.assert_allclose(other.means_, fits[1].means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(fits[2].means_, fits[3].means_)


def test_integer_weights_repeat_rows(X):
    counts = np.random.default_rng(3).integers(0, 4, X.shape[0])
    kwargs = dict(n_trials=N_TRIALS, tol=1e-10, max_iter=500, random_state=1, weights_init=WEIGHTS,
                  means_init=true_means())
    weighted = entrosum.MixedMixture(3, FAMILIES, **kwargs).fit(X, sample_weight=counts)
    repeated = entrosum.MixedMixture(3, FAMILIES, **kwargs).fit(np.repeat(X, counts, axis=0))
    # the starts' variances and probabilities come from k-means passes over different rows; both reach one optimum
    assert weighted.lower_bound_ == pytest.approx(repeated.lower_bound_, rel=1e-7)
    np.testing.assert_allclose(np.sort(weighted.means_, axis=0), np.sort(repeated.means_, axis=0), rtol=1e-5)
    np.testing.assert_allclose(weighted.monitor_.history["data_term"][0], repeated.monitor_.history["data_term"][0],
                               rtol=1e-12)


def test_weights_equal_to_one_change_nothing(X):
    kwargs = dict(n_trials=N_TRIALS, tol=1e-8, random_state=0)
    plain = entrosum.MixedMixture(3, FAMILIES, **kwargs).fit(X)
    ones = entrosum.MixedMixture(3, FAMILIES, **kwargs).fit(X, sample_weight=np.ones(len(X)))
    np.testing.assert_allclose(ones.lower_bounds_, plain.lower_bounds_, rtol=1e-12)


def test_sample_clone_pickle_and_save(X, tmp_path):
    model = entrosum.MixedMixture(3, FAMILIES, n_trials=N_TRIALS, random_state=0).fit(X)
    draws, labels = model.sample(20_000)
    assert draws.shape == (20_000, 9)
    for k in range(3):
        np.testing.assert_allclose(draws[labels == k].mean(axis=0)[[0, 1, 3, 4, 5, 7, 8]],
                                   model.means_[k][[0, 1, 3, 4, 5, 7, 8]], rtol=0.1, atol=0.1)
        np.testing.assert_allclose(np.bincount(draws[labels == k, 6].astype(int), minlength=4)
                                   / np.sum(labels == k), model.probabilities_[k], atol=0.03)
    assert not hasattr(clone(model), "variances_")
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict_proba(X), model.predict_proba(X))
    named = entrosum.MixedMixture(3, {"gaussian": [0, 1], "bernoulli": 2, "poisson": [3, 4], "binomial": [5],
                                      "categorical": [6], "exponential": [7], "gamma": [8]},
                                  n_trials={5: N_TRIALS}, random_state=0).fit(X)
    named.save(tmp_path / "model.npz")
    loaded = entrosum.load(tmp_path / "model.npz")
    assert loaded.get_params()["n_trials"] == {5: N_TRIALS}  # int keys stay ints in the file
    np.testing.assert_array_equal(loaded.score_samples(X), named.score_samples(X))
    np.testing.assert_array_equal(clone(loaded).fit(X).means_, named.means_)
    saved = entrosum._core.SavedModel(str(tmp_path / "model.npz"))
    parameters = saved.parameters()
    assert parameters["column_families"] == list(named.column_families_)
    np.testing.assert_array_equal(parameters["probabilities"], named.probabilities_)
    np.testing.assert_array_equal(parameters["n_levels"], [4])
    np.testing.assert_allclose(saved.score_samples(X), named.score_samples(X), rtol=1e-13)


@pytest.mark.parametrize("column, value, match", [
    (3, -1.0, r"Negative values in data passed to MixedMixture: column 3 holds -1 in row 11, but poisson columns"),
    (4, 2.5, r"column 4 holds 2.5 in row 11, but poisson columns must be counts"),
    (5, 11.0, r"column 5 holds 11 in row 11, but binomial columns must be counts"),
    (5, 1.5, r"column 5 holds 1.5 in row 11, but binomial"),
    (2, 2.0, r"column 2 holds 2 in row 11, but bernoulli columns must be binary"),
    (6, 1.5, r"column 6 holds 1.5 in row 11, but categorical columns must be integer codes"),
    (7, 0.0, r"column 7 holds 0 in row 11, but exponential columns must be positive"),
    (8, -2.0, r"column 8 holds -2 in row 11, but gamma columns must be positive"),
])
def test_bad_values_are_named_with_their_column_and_family(X, column, value, match):
    bad = X.copy()
    bad[11, column] = value
    for dtype in (np.float64, np.float32):
        with pytest.raises(ValueError, match=match):
            entrosum.MixedMixture(3, FAMILIES, n_trials=N_TRIALS).fit(bad.astype(dtype))


def test_codes_beyond_the_levels_are_refused_at_inference_and_with_given_levels(X):
    model = entrosum.MixedMixture(2, FAMILIES, n_trials=N_TRIALS, random_state=0).fit(X)
    bad = X.copy()
    bad[4, 6] = 4.0  # the fit inferred 4 levels: codes 0..3
    with pytest.raises(ValueError, match="column 6 holds 4 in row 4, but categorical columns must be integer codes"):
        model.score_samples(bad)
    with pytest.raises(ValueError, match="column 6 holds 3 in row"):
        entrosum.MixedMixture(2, FAMILIES, n_trials=N_TRIALS, n_levels=3).fit(X)


@pytest.mark.parametrize("families, match", [
    ({**FAMILIES, "gaussian": [0]}, r"column 1 is in no family"),
    ({**FAMILIES, "gaussian": [0, 1, 2]}, r"column 2 is assigned twice in families \(to 'gaussian' and 'bernoulli'\)"),
    ({**FAMILIES, "gaussian": [0, 1, 9]}, r"families\['gaussian'\] names the column 9, but X has 9 columns"),
    ({**FAMILIES, "lognormal": []}, r"unknown family 'lognormal'"),
    ({**FAMILIES, "gaussian": [0, "age"]}, r"names the column 'age', but X has no column names"),
    ([0, 1], r"families must be a dict"),
])
def test_bad_families(X, families, match):
    with pytest.raises(ValueError, match=match):
        entrosum.MixedMixture(2, families, n_trials=N_TRIALS).fit(X)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_trials": 0}, r"n_trials must be whole numbers of trials in \[1, 2\^53\]; column 5 has 0"),
    ({"n_trials": 2.5}, r"n_trials must be whole numbers"),
    ({"n_trials": [10, 10]}, r"n_trials must be one number, a dict, or one number per column of the family \(1\)"),
    ({"n_trials": {4: 10}}, r"n_trials has no entry for column 5"),
    ({"n_trials": N_TRIALS, "n_levels": 0}, r"n_levels must be whole numbers in \[1, 2\^24\]; column 6 has 0"),
    ({"n_trials": N_TRIALS, "reg_covar": -1.0}, r"reg_covar must be a finite non-negative number"),
])
def test_bad_constants(X, kwargs, match):
    with pytest.raises(ValueError, match=match):
        entrosum.MixedMixture(2, FAMILIES, **kwargs).fit(X)


def test_tampered_attributes_are_refused(X):
    model = entrosum.MixedMixture(2, FAMILIES, n_trials=N_TRIALS, random_state=0).fit(X)
    for name, value, match in [
        ("variances_", np.ones((2, 3)), r"MixedMixture.variances_ has shape \(2, 3\), expected \(2, 2\)"),
        ("probabilities_", -np.ones((2, 4)), r"MixedMixture.probabilities_ must be >= 0.0"),
        ("column_families_", np.array(["gaussian"] * 9, dtype=object), r"n_trials_ has shape"),
        ("n_levels_", np.array([3]), r"probabilities_ has shape \(2, 4\), expected \(2, 3\)"),
    ]:
        tampered = pickle.loads(pickle.dumps(model))
        setattr(tampered, name, value)
        with pytest.raises(ValueError, match=match):
            tampered.score_samples(X)


def test_statistics_about_different_shifts_merge_exactly(X):
    """Two E-steps under different parameters take their Gaussian sums about different shifts (each model's mean);
    merged in either order, the M-step gives the responsibility-weighted mean and variance of a numpy reference."""
    a = entrosum.MixedMixture(3, FAMILIES, n_trials=N_TRIALS, random_state=0, max_iter=0).fit(X)  # the start
    b = set_true_parameters(pickle.loads(pickle.dumps(a)))
    steps = a._steps()
    first, second = X[:500], X[500:]
    stats_a = steps.chunk_statistics(a._current_params(), first)
    stats_b = steps.chunk_statistics(b._current_params(), second)
    resp = np.concatenate([a.predict_proba(first), b.predict_proba(second)])  # (n, K)
    counts = resp.sum(axis=0)
    means = resp.T @ X[:, :2] / counts[:, None]
    variances = resp.T @ X[:, :2] ** 2 / counts[:, None] - means**2 + a.reg_covar
    for merged in (stats_a + stats_b, stats_b + stats_a):
        params = steps.m_step(merged, a._current_params())
        np.testing.assert_allclose(params["means"][:, :2], means, rtol=1e-10)
        np.testing.assert_allclose(params["variances"], variances, rtol=1e-8)
