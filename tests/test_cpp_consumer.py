"""The installed C++ library serves a project outside this tree.

The library is configured, built and installed with plain CMake into a temporary prefix; the
project in ``tests/consumer`` finds it with ``find_package(entrosum CONFIG REQUIRED)``, fits PPCA on
data written here, and prints its ELBO and entropy sum, which are checked against numpy; and it loads
models saved from Python and scores data with them, which is checked against the Python scores.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import entrosum

from conftest import model_cases

REPO = Path(__file__).resolve().parents[1]
CONSUMER = Path(__file__).resolve().parent / "consumer"

N_SAMPLES, N_FEATURES, N_COMPONENTS = 2000, 8, 2


def _cmake() -> str:
    cmake = shutil.which("cmake")
    assert cmake is not None, "cmake is not on PATH; the C++ consumer test needs it"
    return cmake


def _run(args: list[str], cwd: Path | None = None) -> str:
    """Runs a command and returns its stdout; on failure the assertion shows both streams."""
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, (
        f"{' '.join(args)} exited with {result.returncode}\n"
        f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    )
    return result.stdout


def _cmeel_prefix() -> str:
    """The prefix of the cmeel-eigen package, where Eigen3Config.cmake lies."""
    result = subprocess.run(
        [sys.executable, "-m", "cmeel", "cmake"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert result.returncode == 0, "`python -m cmeel cmake` failed; is cmeel-eigen installed?"
    prefix = result.stdout.strip()
    assert Path(prefix).is_dir(), f"cmeel prefix {prefix!r} is not a directory"
    return prefix


@pytest.fixture(scope="module")
def prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An installed prefix: the library configured, built and installed with plain CMake."""
    cmake = _cmake()
    root = tmp_path_factory.mktemp("entrosum_install")
    build, installed = root / "build", root / "prefix"
    _run(
        [
            cmake,
            "-S", str(REPO),
            "-B", str(build),
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DCMAKE_INSTALL_PREFIX={installed}",
            "-DENTROSUM_PYTHON=OFF",
            # The interpreter whose cmeel-eigen provides Eigen (the one running these tests).
            f"-DPython_EXECUTABLE={sys.executable}",
        ]
    )  # fmt: skip
    _run([cmake, "--build", str(build), "-j2"])
    _run([cmake, "--install", str(build)])
    return installed


@pytest.fixture(scope="module")
def consumer(prefix: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The consumer program, configured against the installed prefix and built."""
    cmake = _cmake()
    build = tmp_path_factory.mktemp("consumer_build")
    _run(
        [
            cmake,
            "-S", str(CONSUMER),
            "-B", str(build),
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DCMAKE_PREFIX_PATH={prefix};{_cmeel_prefix()}",
        ]
    )  # fmt: skip
    _run([cmake, "--build", str(build), "-j2"])
    program = build / "entrosum_consumer"
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


def test_installed_prefix_layout(prefix: Path) -> None:
    assert (prefix / "include/entrosum/entrosum.hpp").is_file()
    assert (prefix / "include/entrosum/version.hpp").is_file()
    libraries = [*prefix.glob("lib*/libentrosum.a"), *prefix.glob("lib*/libentrosum.so")]
    assert libraries, f"no libentrosum.a or .so under {prefix}/lib*"
    for config in ("entrosumConfig.cmake", "entrosumConfigVersion.cmake"):
        found = list(prefix.glob(f"lib*/cmake/entrosum/{config}"))
        assert found, f"no lib*/cmake/entrosum/{config} under {prefix}"


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
