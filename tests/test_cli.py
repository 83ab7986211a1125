"""The command line, run in subprocesses on generated files: fit, score and info round-trip for every model;
bad paths, shapes, models and options give one line on stderr, a non-zero exit code and no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

import entrosum

from conftest import MIXED_FAMILIES, model_cases

#: Command-line model name and settings for the data of each case of conftest.model_cases.
CLI_CASES = {
    "gmm_full": ("gmm", {"n_components": 3, "covariance_type": "full"}),
    "gmm_spherical": ("gmm", {"n_components": 3, "covariance_type": "spherical"}),
    "gmm_tied_spherical": ("gmm", {"n_components": 3, "covariance_type": "tied_spherical"}),
    "bernoulli": ("bernoulli", {"n_components": 2}),
    "poisson": ("poisson", {"n_components": 2}),
    "binomial": ("binomial", {"n_components": 2, "n_trials": 20}),
    "exponential": ("exponential", {"n_components": 2}),
    "gamma": ("gamma", {"n_components": 2}),
    "mixed": ("mixed", {"n_components": 2, "families": MIXED_FAMILIES, "n_trials": 5}),
    "multinomial": ("multinomial", {"n_components": 2}),
    "categorical": ("categorical", {"n_components": 2}),
    "ppca": ("ppca", {"n_components": 2}),
    "fa": ("fa", {"n_components": 2}),
    "sparse": ("sparse", {"n_components": 3, "max_iter": 2000}),
}


def run(*args: str, module: bool = True) -> subprocess.CompletedProcess:
    """``python -m entrosum ARGS`` (or the console script), with its output."""
    if module:
        command = [sys.executable, "-m", "entrosum", *args]
    else:
        command = [str(Path(sysconfig.get_path("scripts")) / "entrosum"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def fields(stdout: str) -> dict[str, str]:
    """The ``label: value`` lines the command prints."""
    return {label.strip(): value.strip() for label, _, value in
            (line.partition(":") for line in stdout.splitlines()) if value}


def assert_fails(result: subprocess.CompletedProcess, match: str, code: int = 1) -> None:
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr, result.stderr
    assert match in result.stderr, result.stderr


@pytest.mark.parametrize("case", CLI_CASES)
def test_fit_score_info_round_trip(tmp_path, case):
    make, data = model_cases()[case]
    name, settings = CLI_CASES[case]
    settings = {"max_iter": 200, **settings}
    options = [text for key, value in settings.items() for text in (f"--{key.replace('_', '-')}", str(value))]
    data_file, model_file = tmp_path / "data.npy", tmp_path / "model.npz"
    np.save(data_file, data)
    result = run("fit", name, str(data_file), *options, "--seed", "0", "--jobs", "2", "--out", str(model_file),
                 "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""

    # the same fit in this process: the command line only maps its options onto the estimator
    reference = type(make())(**settings, random_state=0).fit(data)
    saved = entrosum.load(model_file)
    assert type(saved) is type(reference)
    for attribute in ("means_", "weights_", "covariances_", "components_", "noise_variance_", "scales_"):
        if hasattr(reference, attribute):
            np.testing.assert_allclose(getattr(saved, attribute), getattr(reference, attribute), rtol=1e-12,
                                       atol=1e-14)
    printed = fields(result.stdout)
    assert printed["model"] == type(reference).__name__ and printed["saved to"] == str(model_file)
    assert float(printed["ELBO F"]) == pytest.approx(reference.monitor_.elbo, rel=1e-9)

    if hasattr(saved, "score_samples"):
        scored = run("score", str(model_file), str(data_file), "--out", str(tmp_path / "scores.npy"))
        assert scored.returncode == 0, scored.stderr
        assert float(fields(scored.stdout)["mean log-likelihood"]) == pytest.approx(saved.score(data), rel=1e-9)
        np.testing.assert_array_equal(np.load(tmp_path / "scores.npy"), saved.score_samples(data))
    else:  # sparse coding: its score is the ES-ELBO, and there is no per-sample likelihood to save
        scored = run("score", str(model_file), str(data_file))
        assert scored.returncode == 0, scored.stderr
        assert float(fields(scored.stdout)["ES-ELBO per sample"]) == pytest.approx(saved.score(data), rel=1e-9)
        assert_fails(run("score", str(model_file), str(data_file), "--out", str(tmp_path / "s.npy")),
                     "no per-sample log-likelihood")

    info = run("info", str(model_file), "--json")
    assert info.returncode == 0, info.stderr
    summary = json.loads(info.stdout)
    monitor = saved.monitor_
    assert summary["model"] == type(saved).__name__ and summary["n_features"] == data.shape[1]
    assert summary["iterations"] == monitor.n_iter and summary["converged"] == monitor.converged
    for field in ("elbo", "entropy_sum", "posterior_entropy", "prior_entropy", "observable_entropy", "gap"):
        assert summary[field] == monitor.history[field][-1], field


def test_progress_bar_and_text_info(tmp_path):
    make, data = model_cases()["fa"]
    np.save(tmp_path / "data.npy", data)
    result = run("fit", "fa", str(tmp_path / "data.npy"), "--n-components", "2", "--seed", "0", "--tol", "1e-6",
                 "--out", str(tmp_path / "fa.npz"), module=False)  # the console script
    assert result.returncode == 0, result.stderr
    assert "F=" in result.stderr and " S=" in result.stderr and "gap=" in result.stderr
    assert "converged" in result.stderr
    info = run("info", str(tmp_path / "fa.npz"), module=False)
    assert info.returncode == 0
    printed = fields(info.stdout)
    assert printed["model"] == "FactorAnalysis" and printed["converged"] == "True"
    for label in ("ELBO F", "entropy sum S", "posterior entropy", "- prior entropy", "- observable entropy",
                  "gap F - S"):
        assert label in printed


def test_csv_npz_and_float32_memmap_data(tmp_path):
    make, data = model_cases()["gmm_diag"]
    reference = make().set_params(random_state=0).fit(data)
    np.savetxt(tmp_path / "data.csv", data, delimiter=",", header="a,b,c,d", comments="")
    np.savez(tmp_path / "data.npz", first=data, second=data[:10])
    np.save(tmp_path / "data32.npy", data.astype(np.float32))
    for source, extra in (("data.csv", []), ("data.npz", ["--key", "first"])):
        result = run("fit", "gmm", str(tmp_path / source), *extra, "--n-components", "3", "--covariance-type",
                     "diag", "--seed", "0", "--quiet", "--out", str(tmp_path / "model.npz"))
        assert result.returncode == 0, result.stderr
        # .csv holds the values printed to 18 digits, which read back exactly
        np.testing.assert_allclose(entrosum.load(tmp_path / "model.npz").means_, reference.means_, rtol=1e-12)
    result = run("fit", "gmm", str(tmp_path / "data32.npy"), "--n-components", "3", "--covariance-type", "diag",
                 "--seed", "0", "--quiet", "--out", str(tmp_path / "model32.npz"))
    assert result.returncode == 0, result.stderr
    assert entrosum.load(tmp_path / "model32.npz").means_.dtype == np.float32
    assert_fails(run("fit", "gmm", str(tmp_path / "data.npz"), "--quiet"), "choose one with --key")


def test_bad_input_gives_a_message_and_an_exit_code(tmp_path):
    make, data = model_cases()["ppca"]
    np.save(tmp_path / "data.npy", data)
    np.save(tmp_path / "vector.npy", data[:, 0])
    np.save(tmp_path / "cube.npy", data.reshape(-1, 2, 3))
    (tmp_path / "text.npz").write_text("not a model")
    (tmp_path / "data.txt").write_text("1 2 3")
    data_file = str(tmp_path / "data.npy")

    assert_fails(run("fit", "ppca", str(tmp_path / "missing.npy")), "no data file")
    assert_fails(run("fit", "ppca", str(tmp_path / "vector.npy")), "must be 2-D")
    assert_fails(run("fit", "ppca", str(tmp_path / "cube.npy")), "must be 2-D")
    assert_fails(run("fit", "ppca", str(tmp_path / "data.txt")), "unsupported data file type")
    assert_fails(run("fit", "nonsense", data_file), "unknown model 'nonsense'; choose one of gmm, ")
    if not hasattr(entrosum, "SparseCoding"):
        assert_fails(run("fit", "sparse", data_file), "'sparse' (SparseCoding) is not available")
    assert_fails(run("fit", "ppca", data_file, "--covariance-type", "full"), "--covariance-type applies to gmm")
    assert_fails(run("fit", "ppca", data_file, "--n-components", "7"), "n_components=7 must be at most")
    assert_fails(run("fit", "bernoulli", data_file, "--quiet"), "must be binary")
    assert_fails(run("fit", "ppca", data_file, "--max-iter", "many"), "invalid int value", code=2)
    assert_fails(run("fit"), "the following arguments are required", code=2)

    model_file = tmp_path / "model.npz"
    assert run("fit", "ppca", data_file, "--out", str(model_file), "--quiet").returncode == 0
    assert_fails(run("score", str(model_file), str(tmp_path / "cube.npy")), "must be 2-D")
    np.save(tmp_path / "narrow.npy", data[:, :4])
    assert_fails(run("score", str(model_file), str(tmp_path / "narrow.npy")), "4 features")
    assert_fails(run("score", str(tmp_path / "missing.npz"), data_file), "no model file")
    assert_fails(run("info", str(tmp_path / "text.npz")), "not an entrosum model file")


def test_version_and_monitor_options(tmp_path):
    result = run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"entrosum {entrosum.__version__}"
    make, data = model_cases()["fa"]
    np.save(tmp_path / "data.npy", data)
    result = run("fit", "fa", str(tmp_path / "data.npy"), "--n-components", "2", "--seed", "0", "--tol", "none",
                 "--gap-tol", "1e-5", "--max-iter", "20000", "--verbose", "--out", str(tmp_path / "fa.npz"))
    assert result.returncode == 0, result.stderr
    model = entrosum.load(tmp_path / "fa.npz")
    assert model.tol is None and model.gap_tol == 1e-5 and model.monitor_.stop_reason == "gap_tol"
    assert "FactorAnalysis: iter     1" in result.stdout  # --verbose: a line per iteration, naming the model
    assert_fails(run("fit", "fa", str(tmp_path / "data.npy"), "--quiet", "--verbose"), "contradict")


def test_fit_without_out_says_the_model_was_not_saved(tmp_path):
    make, data = model_cases()["ppca"]
    np.save(tmp_path / "data.npy", data)
    result = run("fit", "ppca", str(tmp_path / "data.npy"), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "the model was not saved; add --out" in result.stderr
    assert "saved to" not in result.stdout


def test_nothing_on_stdout_before_an_error(tmp_path):
    make, data = model_cases()["ppca"]
    np.save(tmp_path / "data.npy", data)
    result = run("fit", "ppca", str(tmp_path / "data.npy"), "--quiet", "--out", str(tmp_path / "missing" / "m.npz"))
    assert result.returncode == 1 and result.stdout == "", result
    assert run("fit", "ppca", str(tmp_path / "data.npy"), "--quiet", "--out", str(tmp_path / "m.npz")).returncode == 0
    np.save(tmp_path / "narrow.npy", data[:, :4])
    for command in ("score", "transform"):
        result = run(command, str(tmp_path / "m.npz"), str(tmp_path / "narrow.npy"))
        assert result.returncode == 1 and result.stdout == "", result
        assert "4 features" in result.stderr


def test_predict_and_transform(tmp_path):
    cases = model_cases()
    for case, command, method in (("gmm_diag", "predict", "predict"), ("fa", "transform", "transform")):
        make, data = cases[case]
        np.save(tmp_path / "data.npy", data)
        model = make().fit(data)
        model.save(tmp_path / "model.npz")
        result = run(command, str(tmp_path / "model.npz"), str(tmp_path / "data.npy"), "--out",
                     str(tmp_path / "out.npy"))
        assert result.returncode == 0, result.stderr
        np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), getattr(model, method)(data))
        printed = run(command, str(tmp_path / "model.npz"), str(tmp_path / "data.npy"))  # CSV on stdout
        assert printed.returncode == 0, printed.stderr
        values = np.loadtxt(printed.stdout.splitlines(), delimiter=",", ndmin=2)
        np.testing.assert_array_equal(values.reshape(getattr(model, method)(data).shape), getattr(model, method)(data))
    assert_fails(run("predict", str(tmp_path / "model.npz"), str(tmp_path / "data.npy")),
                 "FactorAnalysis has no predict")


def test_a_csv_whose_first_line_mixes_numbers_and_text_is_an_error(tmp_path):
    (tmp_path / "typo.csv").write_text("1.0,2.0,x3\n4.0,5.0,6.0\n7.0,8.0,9.0\n")
    assert_fails(run("fit", "ppca", str(tmp_path / "typo.csv"), "--n-components", "1", "--quiet"),
                 "line 1, column 3 holds 'x3', which is not a number")
    (tmp_path / "header.csv").write_text("a,b,c\n1.0,2.0,3.5\n4.0,5.0,6.0\n7.0,8.0,9.5\n")
    result = run("fit", "ppca", str(tmp_path / "header.csv"), "--n-components", "1", "--quiet", "--out",
                 str(tmp_path / "m.npz"))
    assert result.returncode == 0, result.stderr
    assert entrosum.load(tmp_path / "m.npz").n_features_in_ == 3


def test_sparse_npz_data_fit_the_models_that_take_sparse_input(tmp_path):
    """A file of scipy.sparse.save_npz: PoissonMixture fits it as the dense counts; a dense-only model says why not."""
    import scipy.sparse as sparse

    counts = np.random.default_rng(0).poisson(np.where(np.arange(30) % 3 == 0, 4.0, 0.0), size=(200, 30))
    counts[100:, :15] = 0
    sparse.save_npz(tmp_path / "counts.npz", sparse.csr_matrix(counts.astype(np.float64)))
    result = run("fit", "poisson", str(tmp_path / "counts.npz"), "--n-components", "2", "--seed", "0", "--quiet",
                 "--out", str(tmp_path / "model.npz"))
    assert result.returncode == 0, result.stderr
    reference = entrosum.PoissonMixture(2, random_state=0).fit(counts.astype(np.float64))
    np.testing.assert_allclose(entrosum.load(tmp_path / "model.npz").means_, reference.means_, rtol=1e-12)
    assert_fails(run("fit", "gmm", str(tmp_path / "counts.npz"), "--quiet"), "sparse input is not supported")
