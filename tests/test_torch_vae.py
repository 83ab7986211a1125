"""entrosum.torch: the VAE training monitor against the numpy accumulator, no graph kept, float32 and float64, clear
shape errors; the differentiable ELBO and entropy-based objective against the closed forms; and Damm et al.'s
finding on scikit-learn's digits: a VAE-1 (learned scalar σ², linear first decoder layer) closes the gap between
its ELBO and the entropy sum, a VAE-0 (σ² = 1) does not."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from entrosum.torch import EntropySumMonitor, elbo, entropy_objective
from entrosum.vae import EntropySumAccumulator, entropy_sum


def small_vae(n_features=6, n_latent=2, hidden=8, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    encoder = torch.nn.Sequential(torch.nn.Linear(n_features, hidden), torch.nn.Tanh(),
                                  torch.nn.Linear(hidden, 2 * n_latent)).to(dtype)
    decoder = torch.nn.Sequential(torch.nn.Linear(n_latent, hidden), torch.nn.Tanh(),
                                  torch.nn.Linear(hidden, n_features)).to(dtype)
    return encoder, decoder


def forward(encoder, decoder, x, n_samples=1, seed=1):
    """ν, log τ², and μ(z) at n_samples draws z ~ q (shape (S, n, D), or (n, D) for one)."""
    mean, log_variance = encoder(x).chunk(2, dim=1)
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn((n_samples, *mean.shape), generator=generator, dtype=mean.dtype)
    decoded = decoder(mean + noise * (0.5 * log_variance).exp())
    return mean, log_variance, decoded if n_samples > 1 else decoded[0]


def numpy_of(*tensors):
    return tuple(None if t is None else t.detach().numpy() for t in tensors)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_monitor_records_the_numpy_values_and_keeps_no_graph(dtype):
    torch.set_num_threads(1)
    encoder, decoder = small_vae(dtype=dtype)
    x = torch.randn(30, 6, generator=torch.Generator().manual_seed(2), dtype=dtype)
    log_sigma2 = torch.tensor(-0.5, dtype=dtype, requires_grad=True)
    monitor = EntropySumMonitor()
    expected = EntropySumAccumulator()
    for rows in (slice(0, 7), slice(7, 30)):
        mean, log_variance, decoded = forward(encoder, decoder, x[rows])
        watched = weakref.ref(decoded)
        monitor.update(x[rows], mean, log_variance, decoded, log_sigma2)
        expected.add(*numpy_of(x[rows], mean, log_variance, decoded, log_sigma2))
        # the monitor neither ran backward nor kept the graph: the training's backward still works, once
        assert all(p.grad is None for p in [*encoder.parameters(), *decoder.parameters(), log_sigma2])
        (-elbo(x[rows], mean, log_variance, decoded, log_sigma2)).backward()
        assert log_sigma2.grad is not None
        del mean, log_variance, decoded
        gc.collect()
        assert watched() is None  # nothing of the batch is retained
        for p in [*encoder.parameters(), *decoder.parameters(), log_sigma2]:
            p.grad = None
    assert monitor.end_epoch() is False
    terms = expected.terms()
    history = monitor.history
    for name in ("elbo", "entropy_sum", "posterior_entropy", "prior_entropy", "observable_entropy", "gap"):
        assert history[name][0] == pytest.approx(terms[name], rel=1e-12, abs=1e-12), name
    assert monitor.details["n_points"][0] == 30
    assert monitor.details["optimal_noise_variance"][0] == pytest.approx(expected.optimal_noise_variance(), rel=1e-12)
    assert "VAE" in monitor.report()


def test_shape_mismatches_raise_clear_errors():
    encoder, decoder = small_vae()
    x = torch.randn(10, 6, dtype=torch.float64)
    mean, log_variance, decoded = forward(encoder, decoder, x)
    monitor = EntropySumMonitor()
    with pytest.raises(ValueError, match=r"encoder_mean must have shape \(n_points, n_latent\) = \(10, H\)"):
        monitor.update(x, mean[:9], log_variance, decoded)
    with pytest.raises(ValueError, match=r"decoder_mean must have X's shape \(10, 6\)"):
        monitor.update(x, mean, log_variance, decoded[:, :5])
    with pytest.raises(ValueError, match=r"decoder_log_variance must be a scalar .* got shape \(4,\)"):
        monitor.update(x, mean, log_variance, decoded, torch.zeros(4))
    with pytest.raises(ValueError, match="no batch was added in this epoch"):
        monitor.end_epoch()
    with pytest.raises(ValueError, match=r"encoder_log_variance must have encoder_mean's shape \(10, 2\)"):
        elbo(x, mean, log_variance[:, :1], decoded)
    with pytest.raises(ValueError, match=r"decoder_mean must have x's shape \(10, 6\)"):
        entropy_objective(x, mean, log_variance, decoded[:, :5])
    with pytest.raises(ValueError, match="'scalar' or 'per_feature'"):
        entropy_objective(x, mean, log_variance, decoded, decoder_variance="per_sample")


@pytest.mark.parametrize("variance", ["none", "scalar", "per_feature", "per_sample"])
@pytest.mark.parametrize("learned_prior", [False, True])
def test_differentiable_elbo_equals_the_accumulated_one(variance, learned_prior):
    encoder, decoder = small_vae()
    x = torch.randn(25, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    mean, log_variance, decoded = forward(encoder, decoder, x, n_samples=3)
    rng = np.random.default_rng(4)
    log_sigma2 = {"none": None, "scalar": torch.tensor(-0.3, dtype=torch.float64),
                  "per_feature": torch.tensor(rng.normal(size=6)),
                  "per_sample": torch.tensor(rng.normal(size=decoded.shape))}[variance]
    prior = torch.tensor(rng.normal(0.0, 0.3, 2)) if learned_prior else None
    expected = entropy_sum(*numpy_of(x, mean, log_variance, decoded, log_sigma2, prior))
    got = elbo(x, mean, log_variance, decoded, log_sigma2, prior)
    assert got.item() == pytest.approx(expected["elbo"], rel=1e-12)


@pytest.mark.parametrize("form", ["scalar", "per_feature"])
@pytest.mark.parametrize("learned_prior", [False, True])
def test_entropy_objective_is_the_elbo_at_the_optimal_variances(form, learned_prior):
    encoder, decoder = small_vae()
    x = torch.randn(25, 6, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    mean, log_variance, decoded = forward(encoder, decoder, x, n_samples=2)
    accumulator = EntropySumAccumulator().add(*numpy_of(x, mean, log_variance, decoded), 0.0)
    expected = accumulator.optimal_terms(decoder_variance=form, learned_prior=learned_prior)
    objective = entropy_objective(x, mean, log_variance, decoded, decoder_variance=form, learned_prior=learned_prior)
    assert objective.item() == pytest.approx(expected["elbo"], rel=1e-12)
    if learned_prior:  # at both optima the ELBO is the entropy sum
        assert objective.item() == pytest.approx(expected["entropy_sum"], rel=1e-12)
    # its gradient is the ELBO's at σ²* (and α²*): the variances' own derivative vanishes there
    sigma2 = accumulator.optimal_noise_variance(per_feature=form == "per_feature")
    log_sigma2 = torch.tensor(np.log(sigma2), requires_grad=True)
    log_alpha2 = torch.tensor(np.log(accumulator.optimal_prior_variances()), requires_grad=True) \
        if learned_prior else None
    at_optimum = elbo(x, mean, log_variance, decoded, log_sigma2, log_alpha2)
    assert at_optimum.item() == pytest.approx(objective.item(), rel=1e-12)
    parameters = list(encoder.parameters()) + list(decoder.parameters())
    wanted = torch.autograd.grad(at_optimum, [*parameters, log_sigma2] + ([log_alpha2] if learned_prior else []),
                                 retain_graph=True)  # the network's graph serves the objective's gradient too
    got = torch.autograd.grad(objective, parameters)
    for g, w in zip(got, wanted[:len(parameters)], strict=True):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)
    for w in wanted[len(parameters):]:
        torch.testing.assert_close(w, torch.zeros_like(w), rtol=0, atol=1e-12)


def test_epoch_values_do_not_depend_on_the_batch_size():
    encoder, decoder = small_vae(dtype=torch.float32)
    x = torch.randn(57, 6, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        mean, log_variance, decoded = forward(encoder, decoder, x)
    values = []
    for batch_size in (1, 7, 57):
        monitor = EntropySumMonitor()
        for start in range(0, 57, batch_size):
            rows = slice(start, start + batch_size)
            monitor.update(x[rows], mean[rows], log_variance[rows], decoded[rows], torch.tensor(-1.0))
        monitor.end_epoch()
        values.append(monitor.history)
    for history in values[:2]:
        for name in ("elbo", "entropy_sum", "gap"):
            assert history[name][0] == pytest.approx(values[2][name][0], rel=1e-12, abs=1e-12), name


def train_on_digits(learn_variance: bool, n_epochs: int, gap_tol: float | None = None, seed: int = 0):
    """A small MLP VAE on the digits (pixel values 0..16), Adam on the ELBO, the monitor fed every batch.

    The decoder's first layer is linear in z with learned weights, which the identity F = S needs (DESIGN.md).
    """
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    X = torch.tensor(load_digits().data, dtype=torch.float32)
    n_features, n_latent, hidden = X.shape[1], 4, 64
    encoder = torch.nn.Sequential(torch.nn.Linear(n_features, hidden), torch.nn.Tanh(),
                                  torch.nn.Linear(hidden, 2 * n_latent))
    decoder = torch.nn.Sequential(torch.nn.Linear(n_latent, hidden), torch.nn.Tanh(),
                                  torch.nn.Linear(hidden, n_features))
    log_sigma2 = torch.zeros((), requires_grad=learn_variance)  # VAE-0: σ² = 1 fixed
    optimizer = torch.optim.Adam([{"params": [*encoder.parameters(), *decoder.parameters()]},
                                  {"params": [log_sigma2] if learn_variance else [], "lr": 0.05}], lr=3e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, n_epochs)
    monitor = EntropySumMonitor(tol=None, gap_tol=gap_tol, max_epochs=n_epochs)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(n_epochs):
        for rows in torch.randperm(len(X), generator=generator).split(64):
            x = X[rows]
            mean, log_variance = encoder(x).chunk(2, dim=1)
            z = mean + torch.randn(mean.shape, generator=generator) * (0.5 * log_variance).exp()
            decoded = decoder(z)
            loss = -elbo(x, mean, log_variance, decoded, log_sigma2)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            monitor.update(x, mean, log_variance, decoded, log_sigma2)
        schedule.step()
        if monitor.end_epoch():
            break
    return monitor


def test_vae1_closes_the_gap_on_digits_and_vae0_does_not():
    vae1 = train_on_digits(learn_variance=True, n_epochs=40)
    relative_gap = vae1.relative_gap
    assert vae1.n_epochs == 40 and vae1.stop_reason == "max_iter"
    assert relative_gap[-1] < 1e-2
    assert relative_gap[0] > 0.3
    assert np.all(relative_gap[-10:] < 0.05 * relative_gap[0])  # shrinks and stays small
    assert np.mean(relative_gap[-10:]) < np.mean(relative_gap[10:20]) < np.mean(relative_gap[:10])
    # the σ² learned is the closed-form optimum of the last epoch's reconstruction errors, to a few percent
    sigma2 = vae1.details["optimal_noise_variance"][-1]
    assert abs(vae1.history["observable_entropy"][-1] - 32 * np.log(2 * np.pi * np.e * sigma2)) < 0.05 * 32

    vae0 = train_on_digits(learn_variance=False, n_epochs=20)
    assert np.all(vae0.relative_gap[-10:] > 0.3)  # σ² = 1 is far from the reconstruction error: no identity
    assert vae0.history["elbo"][-1] < vae1.history["elbo"][-1]


def test_gap_tol_stops_the_training():
    monitor = train_on_digits(learn_variance=True, n_epochs=60, gap_tol=2e-2)
    assert monitor.stop_reason == "gap_tol"
    assert monitor.n_epochs < 60
    assert monitor.relative_gap[-1] < 2e-2 <= monitor.relative_gap[-2]
