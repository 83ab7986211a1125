"""The C++ library serves projects outside this tree.

The library is configured, built and installed with plain CMake into a temporary prefix. The project
in ``tests/consumer`` finds it there with ``find_package(entrosum CONFIG REQUIRED)``; the project in
``tests/consumer_add_subdirectory`` builds the same program with the source tree added by
``add_subdirectory``. The program fits PPCA on data written here and prints its ELBO and entropy sum,
which are checked against numpy; it also loads models saved from Python and scores data with them,
which is checked against the Python scores. The ``find_package`` project also compiles every installed
public header alone in a translation unit of its own. The example in ``cpp/examples``, built with the
library, fits a Gaussian mixture; its monitor is checked against EM written here in numpy.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import entrosum

from conftest import model_cases

# Every test here builds C++; the wheel check, run where no compiler is installed, deselects them.
pytestmark = pytest.mark.needs_compiler

REPO = Path(__file__).resolve().parents[1]
CONSUMERS = {
    "find_package": Path(__file__).resolve().parent / "consumer",
    "add_subdirectory": Path(__file__).resolve().parent / "consumer_add_subdirectory",
}

N_SAMPLES, N_FEATURES, N_COMPONENTS = 2000, 8, 2


def _cmake() -> str:
    cmake = shutil.which("cmake")
    assert cmake is not None, "cmake is not on PATH; the C++ consumer test needs it"
    return cmake


def _run(args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Runs a command and returns its stdout; on failure the assertion shows both streams."""
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env)
    assert result.returncode == 0, (
        f"{' '.join(args)} exited with {result.returncode}\n"
        f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    )
    return result.stdout


def _shared_build_options() -> list[str]:
    """CMake options that let the library builds here reuse the objects of the Python package's build.

    `pip install` compiled the same library sources with -march=native (ENTROSUM_NATIVE, its default), with the
    same compiler and build type. Configured the same way, and with a compiler cache (ccache, when installed; CI
    installs it), the two builds here compile nothing that pip compiled: the library is compiled once per machine,
    not three times.
    """
    options = ["-DENTROSUM_NATIVE=ON", "-DCMAKE_BUILD_TYPE=Release"]
    # scikit-build-core compiles with Python's own C++ compiler (sysconfig's CXX) unless CXX is set; a cache keys
    # on the compiler's name, so the builds here name the same one.
    python_compiler = (sysconfig.get_config_var("CXX") or "").split()
    if "CXX" not in os.environ and python_compiler and shutil.which(python_compiler[0]):
        options.append(f"-DCMAKE_CXX_COMPILER={python_compiler[0]}")
    if "CMAKE_CXX_COMPILER_LAUNCHER" not in os.environ and shutil.which("ccache"):
        options.append("-DCMAKE_CXX_COMPILER_LAUNCHER=ccache")
    return options


def _build_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of the builds here: ccache's base directory at this session's temporary root.

    The consumer projects compile the installed headers from a prefix in a new temporary directory each session.
    ccache then sees those paths relative to the build directory, the same every session, so that the header checks
    (a translation unit per header) and the consumer programs are compiled once per machine, not once per run. The
    library's own sources lie outside that root and keep the absolute paths of the package's build.
    """
    env = dict(os.environ)
    env.setdefault("CCACHE_BASEDIR", str(tmp_path_factory.getbasetemp()))
    return env


def _cmeel_prefix() -> str:
    """The prefixes of the cmeel packages, where Eigen3Config.cmake lies, as a CMake list.

    `python -m cmeel cmake` prints a path list: a venv made with --system-site-packages has two prefixes.
    """
    result = subprocess.run(
        [sys.executable, "-m", "cmeel", "cmake"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert result.returncode == 0, "`python -m cmeel cmake` failed; is cmeel-eigen installed?"
    prefixes = [prefix for prefix in result.stdout.strip().split(os.pathsep) if Path(prefix).is_dir()]
    assert prefixes, f"no cmeel prefix in {result.stdout!r} is a directory"
    return ";".join(prefixes)


@pytest.fixture(scope="module")
def build_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The library and the examples configured and built with plain CMake, and installed: (build, prefix)."""
    cmake = _cmake()
    root = tmp_path_factory.mktemp("entrosum_install")
    build, installed = root / "build", root / "prefix"
    _run(
        [
            cmake,
            "-S", str(REPO),
            "-B", str(build),
            *_shared_build_options(),
            f"-DCMAKE_INSTALL_PREFIX={installed}",
            "-DENTROSUM_PYTHON=OFF",
            "-DENTROSUM_EXAMPLES=ON",
            # The interpreter whose cmeel-eigen provides Eigen (the one running these tests).
            f"-DPython_EXECUTABLE={sys.executable}",
        ]
    )  # fmt: skip
    _run([cmake, "--build", str(build), "-j2"], env=_build_env(tmp_path_factory))
    _run([cmake, "--install", str(build)])
    return build, installed


@pytest.fixture(scope="module")
def prefix(build_tree: tuple[Path, Path]) -> Path:
    """The installed prefix."""
    return build_tree[1]


@pytest.fixture(scope="module")
def consumer_build(prefix: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Configures and builds a consumer project once per module: against the installed prefix
    ("find_package") or the source tree ("add_subdirectory"); returns its build directory."""
    builds: dict[str, Path] = {}

    def build_consumer(kind: str) -> Path:
        if kind not in builds:
            cmake = _cmake()
            build = tmp_path_factory.mktemp(f"consumer_{kind}")
            # Eigen from cmeel-eigen, nlohmann-json as the library build found it (the interpreter running these
            # tests); the installed prefix for find_package, the source tree for add_subdirectory.
            found_by = (
                [f"-DCMAKE_PREFIX_PATH={prefix};{_cmeel_prefix()}"]
                if kind == "find_package"
                else [f"-DCMAKE_PREFIX_PATH={_cmeel_prefix()}", f"-DENTROSUM_SOURCE_DIR={REPO}"]
            )
            _run([cmake, "-S", str(CONSUMERS[kind]), "-B", str(build), *_shared_build_options(),
                  f"-DPython_EXECUTABLE={sys.executable}", *found_by])
            _run([cmake, "--build", str(build), "-j2"], env=_build_env(tmp_path_factory))
            builds[kind] = build
        return builds[kind]

    return build_consumer


@pytest.fixture(scope="module", params=sorted(CONSUMERS))
def consumer(request: pytest.FixtureRequest, consumer_build: Callable[[str], Path]) -> Path:
    """The consumer program, configured against the installed prefix or the source tree, and built."""
    program = consumer_build(request.param) / "entrosum_consumer"
    assert program.is_file(), f"the consumer build did not produce {program}"
    return program


def _data() -> np.ndarray:
    """(N_SAMPLES, N_FEATURES) low-rank signal plus isotropic noise."""
    rng = np.random.default_rng(20240601)
    components = rng.normal(size=(N_FEATURES, N_COMPONENTS)) * np.array([3.0, 1.5])
    latents = rng.normal(size=(N_SAMPLES, N_COMPONENTS))
    noise = 0.5 * rng.normal(size=(N_SAMPLES, N_FEATURES))
    return latents @ components.T + noise + np.linspace(-2.0, 2.0, N_FEATURES)


def _closed_form_elbo(data: np.ndarray, n_components: int) -> float:
    """Per-sample log-likelihood of the ML PPCA, −½[D log 2π + log|C| + D] (Tipping & Bishop)."""
    n_features = data.shape[1]
    covariance = np.cov(data, rowvar=False, ddof=0)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)  # increasing order
    noise_variance = eigenvalues[:-n_components].mean()
    top_values, top_vectors = eigenvalues[-n_components:], eigenvectors[:, -n_components:]
    # C = U_H (L_H − σ² I) U_Hᵀ + σ² I
    model_covariance = (top_vectors * (top_values - noise_variance)) @ top_vectors.T
    model_covariance += noise_variance * np.eye(n_features)
    sign, log_det = np.linalg.slogdet(model_covariance)
    assert sign > 0
    return -0.5 * (n_features * math.log(2.0 * math.pi) + log_det + n_features)


def _parse(stdout: str) -> tuple[str, dict[str, dict[str, str]]]:
    """The printed version and, per fit, its ``key=value`` fields."""
    version_match = re.search(r"^version=(\S+)$", stdout, re.MULTILINE)
    assert version_match is not None, stdout
    fits: dict[str, dict[str, str]] = {}
    for line in stdout.splitlines():
        name, _, rest = line.partition(" ")
        if name in ("closed_form", "em"):
            fits[name] = dict(field.split("=", 1) for field in rest.split())
    assert set(fits) == {"closed_form", "em"}, stdout
    return version_match.group(1), fits


def _public_headers() -> set[str]:
    """The public headers as a consumer includes them: the source tree's, in their layer folders, and the
    generated version header."""
    include = REPO / "cpp" / "include"
    return {path.relative_to(include).as_posix() for path in include.rglob("*.hpp")} | {"entrosum/version.hpp"}


def test_installed_prefix_layout(prefix: Path) -> None:
    assert (prefix / "include/entrosum/entrosum.hpp").is_file()
    assert (prefix / "include/entrosum/version.hpp").is_file()
    assert (prefix / "include/entrosum/mixtures/gaussian_mixture.hpp").is_file()
    installed = {path.relative_to(prefix / "include").as_posix() for path in (prefix / "include").rglob("*.hpp")}
    assert installed == _public_headers()
    libraries = [*prefix.glob("lib*/libentrosum.a"), *prefix.glob("lib*/libentrosum.so")]
    assert libraries, f"no libentrosum.a or .so under {prefix}/lib*"
    for config in ("entrosumConfig.cmake", "entrosumConfigVersion.cmake", "EntrosumNlohmannJson.cmake"):
        found = list(prefix.glob(f"lib*/cmake/entrosum/{config}"))
        assert found, f"no lib*/cmake/entrosum/{config} under {prefix}"


def test_each_installed_header_compiles_alone(consumer_build: Callable[[str], Path]) -> None:
    # tests/consumer compiles one translation unit per installed header (its build would have failed
    # otherwise) and lists the headers it found; they must be every public header, none forgotten.
    build = consumer_build("find_package")
    checked = (build / "installed_headers.txt").read_text().split()
    assert sorted(checked) == checked and set(checked) == _public_headers()
    object_dir = build / "CMakeFiles" / "entrosum_header_check.dir"
    objects = [path for path in object_dir.rglob("*") if path.suffix in (".o", ".obj")]
    assert len(objects) == len(checked), objects


def test_consumer_fits_ppca(consumer: Path, tmp_path: Path) -> None:
    data = _data()
    data_file = tmp_path / "data.f64"
    np.ascontiguousarray(data, dtype="<f8").tofile(data_file)
    stdout = _run([str(consumer), str(data_file), str(N_SAMPLES), str(N_FEATURES), str(N_COMPONENTS)])
    version, fits = _parse(stdout)

    assert version == entrosum.__version__

    expected_elbo = _closed_form_elbo(data, N_COMPONENTS)
    closed_form, em = fits["closed_form"], fits["em"]
    assert closed_form["stop"] == "closed_form"
    assert float(closed_form["elbo"]) == pytest.approx(expected_elbo, rel=1e-10, abs=0.0)
    # At the maximum of the likelihood the ELBO with the exact posterior is a sum of entropies.
    assert float(closed_form["entropy_sum"]) == pytest.approx(float(closed_form["elbo"]), rel=1e-10, abs=0.0)

    # EM stopped by its gap rule, not by the iteration cap, at the closed-form optimum.
    assert em["stop"] == "gap_tol", stdout
    assert int(em["iterations"]) < 5000
    assert float(em["elbo"]) == pytest.approx(expected_elbo, rel=1e-7, abs=0.0)
    assert float(em["entropy_sum"]) == pytest.approx(expected_elbo, rel=1e-7, abs=0.0)
    assert float(em["noise_variance"]) == pytest.approx(float(closed_form["noise_variance"]), rel=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_consumer_scores_models_saved_from_python(consumer: Path, tmp_path: Path, dtype) -> None:
    for name, (make, data) in model_cases(dtype).items():
        model = make().fit(data)
        model_file, data_file = tmp_path / f"{name}.npz", tmp_path / f"{name}.f64"
        model.save(model_file)
        np.ascontiguousarray(data, dtype="<f8").tofile(data_file)
        lines = _run([str(consumer), "score", str(model_file), str(data_file), *map(str, data.shape)]).split()
        assert lines[0] == f"model={type(model).__name__}" and lines[1] == f"dtype={np.dtype(dtype).name}"
        # the library built here is the same code as the Python module's, compiled with other flags (for sparse
        # coding, a per-point Newton solver stopped at a tolerance may then take one step more or less)
        data64 = data.astype(np.float64)
        rel = 1e-12 if hasattr(model, "score_samples") else 1e-9
        assert float(lines[2].removeprefix("score=")) == pytest.approx(model.score(data64), rel=rel), name
        if hasattr(model, "score_samples"):  # not sparse coding, which has no closed-form likelihood
            np.testing.assert_allclose(np.array(lines[3:], dtype=float), model.score_samples(data64), rtol=1e-12,
                                       err_msg=name)
        else:
            assert len(lines) == 3


# ---- the example: a Gaussian mixture and its monitor ----------------------------------------------

MONITOR_COLUMNS = ("elbo", "entropy_sum", "posterior_entropy", "prior_entropy", "observable_entropy", "gap")


def _parse_example(stdout: str) -> tuple[dict[str, np.ndarray], np.ndarray, str]:
    """The example's parameter lines (``name v0 v1 ...``), its monitor table (one row per iteration,
    columns MONITOR_COLUMNS) and its stop reason."""
    values: dict[str, np.ndarray] = {}
    rows: list[list[float]] = []
    stop = ""
    for line in stdout.splitlines():
        fields = line.split()
        if fields and fields[0].startswith(("initial_", "fitted_")):
            values[fields[0]] = np.array([float(v) for v in fields[1:]])
        elif fields and fields[0].isdigit():
            assert int(fields[0]) == len(rows) + 1, line
            rows.append([float(v) for v in fields[1:]])
        elif line.startswith("stop="):
            stop = line
    assert rows and stop, stdout
    return values, np.array(rows), stop


def _reference_em(data: np.ndarray, weights: np.ndarray, means: np.ndarray, covariances: np.ndarray,
                  n_iterations: int) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Exact EM for a full-covariance Gaussian mixture without regularisation, from the given start:
    per iteration t the monitor's columns at (q_t, Θ_t) (DESIGN.md §3, GMM full), and Θ after the last
    M-step."""
    from scipy.special import logsumexp, xlogy

    n_samples, n_features = data.shape
    rows = []
    for _ in range(n_iterations):
        # E-step: log π_k + log N(x_n; μ_k, Σ_k) from a Cholesky factor of Σ_k, then log-sum-exp.
        log_joint = np.empty((n_samples, len(weights)))
        log_dets = np.empty(len(weights))
        for k, (mean, covariance) in enumerate(zip(means, covariances)):
            factor = np.linalg.cholesky(covariance)
            whitened = np.linalg.solve(factor, (data - mean).T)
            log_dets[k] = 2.0 * np.log(np.diag(factor)).sum()
            log_joint[:, k] = np.log(weights[k]) - 0.5 * (
                n_features * np.log(2.0 * np.pi) + log_dets[k] + (whitened**2).sum(axis=0)
            )
        log_likelihood = logsumexp(log_joint, axis=1)
        resp = np.exp(log_joint - log_likelihood[:, None])
        counts = resp.sum(axis=0)
        # F = mean log-likelihood; S = H̄[r] − H[π] − Σ_k (N_k / N) ½ log det(2πe Σ_k).
        elbo = log_likelihood.mean()
        posterior_entropy = -xlogy(resp, resp).sum() / n_samples
        prior_entropy = -xlogy(weights, weights).sum()
        component_entropies = 0.5 * (n_features * np.log(2.0 * np.pi * np.e) + log_dets)
        observable_entropy = (counts / n_samples) @ component_entropies
        entropy_sum = posterior_entropy - prior_entropy - observable_entropy
        rows.append([elbo, entropy_sum, posterior_entropy, prior_entropy, observable_entropy, elbo - entropy_sum])
        # M-step: π_k = N_k / N, weighted means and centred covariances.
        weights = counts / n_samples
        means = (resp.T @ data) / counts[:, None]
        covariances = np.array(
            [((resp[:, k, None] * (data - means[k])).T @ (data - means[k])) / counts[k] for k in range(len(counts))]
        )
    return np.array(rows), (weights, means, covariances)


@pytest.fixture(scope="module")
def example_program(build_tree: tuple[Path, Path]) -> Path:
    program = build_tree[0] / "cpp" / "examples" / "gaussian_mixture_example"
    assert program.is_file(), f"the library build did not produce the example {program}"
    return program


def test_example_fits_gaussian_mixture(example_program: Path, tmp_path: Path) -> None:
    data_file = tmp_path / "data.f64"
    stdout = _run([str(example_program), "--data-out", str(data_file)])
    header = re.search(r"^entrosum (\S+): Gaussian mixture, (\d+) samples, (\d+) features, (\d+) components$",
                       stdout, re.MULTILINE)
    assert header is not None, stdout
    assert header.group(1) == entrosum.__version__
    n_samples, n_features, n_components = (int(header.group(i)) for i in (2, 3, 4))
    data = np.fromfile(data_file, dtype="<f8").reshape(n_samples, n_features)
    values, monitor, stop = _parse_example(stdout)

    assert stop == "stop=gap_tol converged=1", stdout
    # Stopped by its rule: |F − S| < 1e-9 |F| at the last iteration, not before.
    assert abs(monitor[-1, 5]) < 1e-9 * abs(monitor[-1, 0])
    assert np.all(np.abs(monitor[:-1, 5]) >= 1e-9 * np.abs(monitor[:-1, 0]))
    assert 3 <= len(monitor) < 500

    # The same EM in numpy from the printed start gives the same monitor, iteration by iteration.
    start = (
        values["initial_weights"],
        values["initial_means"].reshape(n_components, n_features),
        values["initial_covariances"].reshape(n_components, n_features, n_features),
    )
    expected, (weights, means, covariances) = _reference_em(data, *start, n_iterations=len(monitor))
    for column, name in enumerate(MONITOR_COLUMNS):
        np.testing.assert_allclose(monitor[:, column], expected[:, column], rtol=1e-9, atol=1e-11, err_msg=name)
    # In numpy too the entropy sum meets the ELBO at convergence (DESIGN.md §2), while it did not at the start.
    assert abs(expected[-1, 5]) < 1e-9 * abs(expected[-1, 0])
    assert abs(expected[0, 5]) > 1e-6 * abs(expected[0, 0])
    np.testing.assert_allclose(values["fitted_weights"], weights, rtol=1e-8)
    np.testing.assert_allclose(values["fitted_means"], means.ravel(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(values["fitted_covariances"], covariances.ravel(), rtol=1e-8, atol=1e-10)
    # The data come from weights 0.5, 0.3, 0.2; the fit finds them (to sampling error).
    np.testing.assert_allclose(np.sort(weights), [0.2, 0.3, 0.5], atol=0.03)
