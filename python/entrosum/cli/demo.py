"""``python -m entrosum demo``: every model on generated data.

Each model is fitted and shown to have its ELBO equal to the entropy sum at convergence, term by term;
sparse coding learns atoms from 8×8 patches of a photograph.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ..binary.binary_sparse_coding import BinarySparseCoding
from ..binary.sigmoid_belief_net import SigmoidBeliefNet
from ..exceptions import convergence_warning
from ..linear.factor_analysis import FactorAnalysis
from ..linear.ppca import PPCA
from ..mixtures.bernoulli import BernoulliMixture
from ..mixtures.gaussian import GaussianMixture
from ..mixtures.poisson import PoissonMixture
from ..sparse.sparse_coding import SparseCoding

#: |F − S| / |F| below which the demo says the two agree.
AGREEMENT = 1e-6


def low_rank_data(n_samples: int, n_features: int, n_components: int, *, heteroscedastic: bool,
                  seed: int = 0) -> np.ndarray:
    """Generate data from x = W z + μ + ε: Gaussian z, per-feature (or equal) noise variances."""
    rng = np.random.default_rng(seed)
    components = rng.standard_normal((n_features, n_components))
    noise_sd = rng.uniform(0.2, 1.0, n_features) if heteroscedastic else np.full(n_features, 0.5)
    latent = rng.standard_normal((n_samples, n_components))
    noise = rng.standard_normal((n_samples, n_features)) * noise_sd
    return latent @ components.T + rng.standard_normal(n_features) + noise


def clustered_data(n_samples: int, n_features: int, n_components: int, seed: int = 2) -> np.ndarray:
    """Gaussian clusters with random centres, scales and correlations."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(n_components, n_features))
    mixing = [np.eye(n_features) + 0.3 * rng.standard_normal((n_features, n_features)) for _ in range(n_components)]
    labels = rng.integers(n_components, size=n_samples)
    noise = rng.standard_normal((n_samples, n_features))
    return np.stack([noise[i] @ mixing[k] for i, k in enumerate(labels)]) + centres[labels]


def binary_mixture_data(n_samples: int, n_features: int, n_components: int, seed: int = 0) -> np.ndarray:
    """Binary rows from a Bernoulli mixture whose components favour different features."""
    rng = np.random.default_rng(seed)
    probabilities = rng.uniform(0.05, 0.35, (n_components, n_features))
    for k in range(n_components):
        probabilities[k, k::n_components] += 0.55
    labels = rng.choice(n_components, size=n_samples, p=rng.dirichlet(np.full(n_components, 5.0)))
    return (rng.random((n_samples, n_features)) < probabilities[labels]).astype(np.float64)


def count_mixture_data(n_samples: int, n_features: int, n_components: int, seed: int = 0) -> np.ndarray:
    """Count rows from a Poisson mixture with rates between 0.5 and 20."""
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.5, 20.0, (n_components, n_features))
    labels = rng.choice(n_components, size=n_samples, p=rng.dirichlet(np.full(n_components, 5.0)))
    return rng.poisson(rates[labels]).astype(np.float64)


def bars_patches(n_samples: int, side: int = 8, noise_sd: float = 0.1, seed: int = 0) -> np.ndarray:
    """Side × side images: Laplace(0, 1) multiples of `side` horizontal and `side` vertical bars, plus noise."""
    rng = np.random.default_rng(seed)
    atoms = np.zeros((2 * side, side, side))
    for k in range(side):
        atoms[k, k, :] = 1.0
        atoms[side + k, :, k] = 1.0
    sources = rng.laplace(0.0, 1.0, (n_samples, 2 * side))
    return sources @ atoms.reshape(2 * side, -1) + noise_sd * rng.standard_normal((n_samples, side * side))


def binary_bars(n_samples: int, *, binary: bool, side: int = 5, seed: int = 0) -> np.ndarray:
    """Side × side images of 2·side bars, each on with probability 0.2 (the bars test of the binary-latent papers).

    ``binary=False``: the bars add up (value 1 each) under Gaussian noise of σ = 0.3 (binary sparse coding's data);
    ``binary=True``: a pixel is on with probability S(8·[a bar through it is on] − 4) (a sigmoid belief net's).
    """
    rng = np.random.default_rng(seed)
    bars = np.zeros((2 * side, side, side))
    for k in range(side):
        bars[k, k, :] = 1.0
        bars[side + k, :, k] = 1.0
    causes = (rng.random((n_samples, 2 * side)) < 0.2).astype(np.float64)
    overlap = causes @ bars.reshape(2 * side, -1)
    if not binary:
        return overlap + 0.3 * rng.standard_normal(overlap.shape)
    on = 1.0 / (1.0 + np.exp(-(8.0 * np.minimum(overlap, 1.0) - 4.0)))
    return (rng.random(overlap.shape) < on).astype(np.float64)


def image_patches(n_samples: int, size: int = 8, seed: int = 0) -> tuple[np.ndarray, str]:
    """Return grey size × size patches of scikit-learn's sample photograph, and their source.

    Each patch is centred (its mean removed); generated bars replace the photograph when scikit-learn (or
    Pillow, which loads the image) is missing.
    """
    try:
        from sklearn.datasets import load_sample_image

        image = load_sample_image("china.jpg").mean(axis=2) / 255.0
    except ImportError:
        patches = bars_patches(n_samples, size, seed=seed)
        source = f"{size}x{size} generated bars (install scikit-learn and Pillow for photograph patches)"
    else:
        rng = np.random.default_rng(seed)
        rows = rng.integers(0, image.shape[0] - size + 1, n_samples)
        columns = rng.integers(0, image.shape[1] - size + 1, n_samples)
        patches = np.stack([image[r:r + size, c:c + size].ravel() for r, c in zip(rows, columns)])
        source = f"{size}x{size} grey patches of scikit-learn's china.jpg"
    return patches - patches.mean(axis=1, keepdims=True), source


def atoms_as_text(components: np.ndarray, scales: np.ndarray, n_atoms: int = 8, size: int = 8) -> str:
    """Draw the n_atoms atoms with the largest scales λ, side by side as text: '#'/'+' positive, 'O'/'o' negative."""
    order = np.argsort(scales)[::-1][:n_atoms]
    width = max(size, 10)
    lines = [" ".join(f"λ={scales[h]:.2e}".ljust(width) for h in order)]
    images = [components[h].reshape(size, size) / np.abs(components[h]).max() for h in order]

    def glyph(value: float) -> str:
        return "#" if value > 0.5 else "+" if value > 0.15 else "O" if value < -0.5 else "o" if value < -0.15 else "."

    for r in range(size):
        lines.append(" ".join("".join(glyph(v) for v in image[r]).ljust(width) for image in images))
    return "\n".join(lines)


def plot_atoms(model: Any, path: str, size: int = 8) -> None:
    """Save the learned atoms (ordered by λ) and the monitor's plot to an image file (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = np.argsort(model.scales_)[::-1]
    columns = 8
    rows = -(-len(order) // columns)
    figure = plt.figure(figsize=(12, 1.5 * rows + 3.5))
    grid = figure.add_gridspec(rows + 2, columns)
    for i, h in enumerate(order):
        axis = figure.add_subplot(grid[i // columns, i % columns])
        limit = np.abs(model.components_[h]).max()
        axis.imshow(model.components_[h].reshape(size, size), cmap="gray", vmin=-limit, vmax=limit)
        axis.set_title(f"λ={model.scales_[h]:.3g}", fontsize=7)
        axis.axis("off")
    model.monitor_.plot([figure.add_subplot(grid[rows:, :columns // 2]),
                         figure.add_subplot(grid[rows:, columns // 2:])])
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


#: Sparse coding in the demo: patches, atoms and EM iterations (kept to a few seconds).
DEMO_PATCHES, DEMO_ATOMS, DEMO_ITERATIONS = 2000, 24, 60


def _models() -> list[tuple[str, Callable[[], Any], np.ndarray]]:
    isotropic = low_rank_data(20_000, 20, 4, heteroscedastic=False)
    heteroscedastic = low_rank_data(20_000, 20, 4, heteroscedastic=True, seed=1)
    binary = binary_mixture_data(20_000, 30, 4, seed=2)
    counts = count_mixture_data(20_000, 8, 3, seed=3)
    clusters = clustered_data(5_000, 5, 4)

    def mixture(kind: str) -> Callable[[], Any]:
        # reg_covar=0: with it the M-step is exact and F = S holds (reg_covar > 0 leaves a gap of its order)
        return lambda: GaussianMixture(4, covariance_type=kind, reg_covar=0.0, tol=None, gap_tol=1e-9,
                                       max_iter=5_000, random_state=0)

    return [
        *[(f"GaussianMixture {kind}", mixture(kind), clusters)
          for kind in ("full", "tied", "diag", "spherical", "tied_diag", "tied_spherical")],
        ("PPCA (closed form)", lambda: PPCA(4, solver="closed_form"), isotropic),
        ("PPCA (EM)", lambda: PPCA(4, solver="em", tol=None, gap_tol=1e-9, max_iter=20_000, random_state=0), isotropic),
        ("FactorAnalysis (EM)",
         lambda: FactorAnalysis(4, tol=None, gap_tol=1e-9, max_iter=20_000, random_state=0), heteroscedastic),
        ("BernoulliMixture (EM)",
         lambda: BernoulliMixture(4, tol=None, gap_tol=1e-9, max_iter=20_000, random_state=0), binary),
        ("PoissonMixture (EM)",
         lambda: PoissonMixture(3, tol=None, gap_tol=1e-9, max_iter=20_000, random_state=0), counts),
        # 10 binary causes, the exact posterior over their 1024 states
        ("BinarySparseCoding (bars)",
         lambda: BinarySparseCoding(10, tol=None, gap_tol=1e-9, max_iter=5_000, n_init=2, random_state=0),
         binary_bars(2000, binary=False)),
        ("SigmoidBeliefNet (bars)",
         lambda: SigmoidBeliefNet(10, tol=None, gap_tol=1e-8, max_iter=5_000, random_state=0),
         binary_bars(1000, binary=True)),
        # F = S after every M-step (λ = λ*, σ² = σ²*): the row shows F and S there, with the fit stopped by tol
        ("SparseCoding (EM, patches)†",
         lambda: SparseCoding(DEMO_ATOMS, tol=1e-3, max_iter=DEMO_ITERATIONS, random_state=0), image_patches(
             DEMO_PATCHES)[0]),
    ]


def run(print_reports: bool = False, plot: str | None = None) -> list[dict]:
    """Fit every model and print the ELBO, the entropy sum, its terms and the gap.

    Also shows the atoms sparse coding learned (saved with the monitor's plot to ``plot`` when given).
    """
    rows = []
    header = (f"{'model':31s}{'iters':>6s}{'ELBO F':>14s}{'entropy sum S':>15s}{'H[q]':>11s}"
              f"{'H[prior]':>11s}{'E H[p(x|z)]':>13s}{'log h(x)':>11s}{'gap F-S':>11s}{'log-lik':>13s}  agree  time")
    print("Each model's ELBO per sample and its entropy-sum form (nats), on generated data:")
    print(header)
    print("-" * len(header))
    for name, make, data in _models():
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", convergence_warning())  # the demo's sparse coding has a fixed budget
            model = make().fit(data)
        seconds = time.perf_counter() - start
        m = model.monitor_
        last = {key: values[-1] for key, values in m.history.items()}
        if isinstance(model, SparseCoding):
            sparse_coding = model
            # after the last M-step: λ, σ² optimal for the q it used, where the ELBO is the ES-ELBO
            last["elbo"], last["entropy_sum"] = last["m_step_elbo"], last["m_step_entropy_sum"]
            last["gap"] = last["elbo"] - last["entropy_sum"]
        agree = abs(last["gap"]) <= AGREEMENT * abs(last["elbo"])
        log_likelihood = model.score(data)
        print(f"{name:31s}{m.n_iter:6d}{last['elbo']:14.6f}{last['entropy_sum']:15.6f}"
              f"{last['posterior_entropy']:11.4f}{last['prior_entropy']:11.4f}{last['observable_entropy']:13.4f}"
              f"{last['data_term']:11.4f}{last['gap']:11.1e}{log_likelihood:13.6f}  {'yes' if agree else 'NO ':5s}"
              f"{seconds:6.2f}s")
        rows.append({"model": name, "agree": agree, **last, "log_likelihood": log_likelihood})
        if print_reports:
            print(m.report())
    print("\nF = S holds at convergence (Lücke & Warnken): the ELBO is a sum of entropies, S = H[q] − H[prior] − "
          "E H[p(x|z)] + log h(x)\n(the Poisson factor uses the pseudo-entropy λ − λ log λ and the data term "
          "(1/N) Σ log h(x) = −(1/N) Σ log x!).")
    print(f"† Laplace sparse coding (Velychko et al.) on {DEMO_PATCHES} {image_patches(1)[1]}, "
          f"{DEMO_ATOMS} atoms, diagonal Gaussian posteriors: F and S after the last M-step, where the ELBO equals "
          "the ES-ELBO\n  H[q] − Σ log(2eλ) − (D/2) log(2πeσ²); its log-lik column is the ES-ELBO of the data "
          "(the likelihood has no closed form). The 8 atoms with the largest λ:")
    print(atoms_as_text(sparse_coding.components_, sparse_coding.scales_))
    if plot:
        plot_atoms(sparse_coding, plot)
        print(f"all {DEMO_ATOMS} atoms and the monitor's plot saved to {plot}")
    return rows
