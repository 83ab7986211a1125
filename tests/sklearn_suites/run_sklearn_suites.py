"""Run scikit-learn's own test files against entrosum's estimators, with only the estimator's import changed.

scikit-learn's wheel ships its test modules (``sklearn/mixture/tests/test_gaussian_mixture.py`` and so on). For
each suite below this script copies the installed module into a temporary directory, replaces the one line that
imports the estimator from scikit-learn by an import from entrosum (nothing else in the file changes), and runs it
with pytest, scikit-learn's own ``conftest`` loaded as a plugin (its ``global_random_seed`` and ``global_dtype``
fixtures) and no configuration of ours. No scikit-learn code is kept in this repository.

    python tests/sklearn_suites/run_sklearn_suites.py                 # every suite: counts and failures
    python tests/sklearn_suites/run_sklearn_suites.py pca --verbose   # one suite, every test's outcome

``tests/test_sklearn_suites.py`` runs the same and checks the outcome of every test against the lists in
``expectations.py`` (the tests left out because they call scikit-learn's private functions, and the ones that fail
where entrosum deliberately differs).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Suite:
    """One of scikit-learn's test modules and the import that makes it test entrosum."""

    #: Path of the test module inside the installed ``sklearn`` package.
    module: str
    #: The line that imports scikit-learn's estimator, and the line that replaces it.
    original_import: str
    replacement_import: str
    #: Only these tests run (by function name); None: every test of the module.
    select: tuple[str, ...] | None = None
    #: Tests not run at all, by function name, with the reason (they test scikit-learn's private functions or
    #: private methods of its estimator, which entrosum does not have, or array-API inputs).
    excluded: dict[str, str] = field(default_factory=dict)
    #: Tests that fail where entrosum deliberately differs, by function name, with the difference (documented in
    #: the estimator's docstring).
    differences: dict[str, str] = field(default_factory=dict)


PRIVATE_ONLY = "tests scikit-learn's private functions only; the estimator is not involved"
ARRAY_API = "array-API inputs (torch, cupy, ...); entrosum's estimators take numpy arrays"


SUITES = {
    "gaussian_mixture": Suite(
        module="mixture/tests/test_gaussian_mixture.py",
        original_import="from sklearn.mixture import GaussianMixture",
        replacement_import="from entrosum import GaussianMixture",
        excluded={
            "test_suffstat_sk_full": PRIVATE_ONLY, "test_suffstat_sk_tied": PRIVATE_ONLY,
            "test_suffstat_sk_diag": PRIVATE_ONLY, "test_gaussian_suffstat_sk_spherical": PRIVATE_ONLY,
            "test_compute_log_det_cholesky": PRIVATE_ONLY, "test_gaussian_mixture_log_probabilities": PRIVATE_ONLY,
            "test_gaussian_mixture_precisions_init": "calls the private methods _initialize and _set_parameters "
                                                     "and the private _estimate_gaussian_parameters",
            "test_gaussian_mixture_precisions_init_diag": "computes precisions_init with the private "
                                                          "_estimate_gaussian_parameters from scikit-learn's KMeans "
                                                          "labels and expects the iterations of a start from "
                                                          "scikit-learn's KMeans (entrosum has its own k-means)",
            "test_gaussian_mixture_all_init_does_not_estimate_gaussian_parameters":
                "replaces the private _estimate_gaussian_parameters by a Mock and counts its calls",
            "test_gaussian_mixture_array_api_compliance": ARRAY_API,
            "test_gaussian_mixture_raises_where_array_api_not_implemented": ARRAY_API,
        },
        differences={
            "test_check_weights": "scikit-learn's message for weights outside [0, 1] calls the smallest weight 'max "
                                  "value' and the largest 'min value'; entrosum's names them the other way round, "
                                  "correctly (its other messages are scikit-learn's)",
        },
    ),
    "factor_analysis": Suite(
        module="decomposition/tests/test_factor_analysis.py",
        original_import="from sklearn.decomposition import FactorAnalysis",
        replacement_import="from entrosum import FactorAnalysis",
    ),
    # PPCA is PCA's probabilistic model; the tests about it are those of score, score_samples, get_covariance and
    # get_precision, and the noise variance they rest on.
    "pca": Suite(
        module="decomposition/tests/test_pca.py",
        original_import="from sklearn.decomposition import PCA",
        replacement_import="from entrosum import PPCA as PCA",
        select=("test_pca", "test_pca_score", "test_pca_score3", "test_pca_sanity_noise_variance",
                "test_pca_score_consistency_solvers", "test_pca_zero_noise_variance_edge_cases"),
        differences={
            "test_pca_score": "expects whiten=True to lower the score: scikit-learn's PCA computes its covariance "
                              "from components rescaled by the whitening; PPCA's model, and so its score, do not "
                              "depend on whiten, which only rescales transform's output",
            "test_pca_zero_noise_variance_edge_cases": "expects noise_variance_ == 0 with n_components == n_features "
                                                       "or n_samples; any sigma^2 up to the covariance's smallest "
                                                       "eigenvalue gives the same model there, and PPCA takes half "
                                                       "of it (at least a floor of 1e-12 times the data's variance) "
                                                       "so its posterior and likelihood stay well conditioned",
        },
    ),
}


def sklearn_directory() -> Path:
    """The installed ``sklearn`` package's directory."""
    import sklearn

    return Path(sklearn.__file__).resolve().parent


def rewritten_module(suite: Suite) -> str:
    """The suite's test module with only the estimator's import replaced."""
    path = sklearn_directory() / suite.module
    if not path.is_file():
        raise FileNotFoundError(f"scikit-learn's test module {path} is not installed; its wheel ships it")
    lines = path.read_text(encoding="utf-8").split("\n")
    matches = [i for i, line in enumerate(lines) if line.strip() == suite.original_import]
    if len(matches) != 1:
        raise RuntimeError(f"expected the line {suite.original_import!r} once in {path}, found it {len(matches)} "
                           "times: this scikit-learn version imports the estimator differently")
    lines[matches[0]] = lines[matches[0]].replace(suite.original_import, suite.replacement_import)
    return "\n".join(lines)


def test_name(node: str) -> str:
    """The function name of a test id such as ``test_score[full]``."""
    return node.split("[", 1)[0]


def run_suite(name: str, directory: Path, extra_args: tuple[str, ...] = ()) -> dict[str, str]:
    """Run one suite in ``directory``; return {test id: 'passed' | 'failed' | 'skipped' | 'excluded'}."""
    suite = SUITES[name]
    module = directory / f"test_sklearn_{name}.py"
    module.write_text(rewritten_module(suite), encoding="utf-8")
    (directory / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")  # none of entrosum's configuration
    report = directory / f"{name}.xml"
    deselect = [f"{module.name}::{test}" for test in suite.excluded]
    targets = [module.name] if suite.select is None else [f"{module.name}::{test}" for test in suite.select]
    command = [sys.executable, "-m", "pytest", *targets, "-p", "sklearn.conftest", "-p", "no:cacheprovider",
               "-q", "--no-header", "-c", "pytest.ini", "--rootdir", str(directory), f"--junitxml={report}",
               *[arg for test in deselect for arg in ("--deselect", test)], *extra_args]
    # float32 too: scikit-learn's global_dtype fixture runs it only when asked (entrosum keeps float32 data float32)
    environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "SKLEARN_RUN_FLOAT32_TESTS": "1"}
    subprocess.run(command, cwd=directory, env=environment, stdout=subprocess.DEVNULL, check=False)
    outcomes: dict[str, str] = {}
    for case in ElementTree.parse(report).iter("testcase"):
        node = case.get("name", "")
        if case.find("failure") is not None or case.find("error") is not None:
            outcomes[node] = "failed"
        elif case.find("skipped") is not None:
            outcomes[node] = "skipped"
        else:
            outcomes[node] = "passed"
    for test in suite.excluded:
        outcomes[test] = "excluded"
    return outcomes


def run_all(names: list[str]) -> dict[str, dict[str, str]]:
    """Run the named suites, each in a fresh temporary directory."""
    results = {}
    for name in names:
        with tempfile.TemporaryDirectory(prefix=f"entrosum-sklearn-{name}-") as directory:
            results[name] = run_suite(name, Path(directory))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suites", nargs="*", choices=[[], *SUITES], help="suites to run (default: all)")
    parser.add_argument("--verbose", action="store_true", help="print every test's outcome")
    args = parser.parse_args(argv)
    import sklearn

    print(f"scikit-learn {sklearn.__version__} from {sklearn_directory()}")
    status = 0
    for name, outcomes in run_all(args.suites or list(SUITES)).items():
        suite = SUITES[name]
        counts = {kind: sum(1 for o in outcomes.values() if o == kind)
                  for kind in ("passed", "failed", "skipped", "excluded")}
        print(f"{name}: " + ", ".join(f"{n} {kind}" for kind, n in counts.items()))
        for node, outcome in sorted(outcomes.items()):
            if args.verbose or outcome == "failed":
                note = suite.differences.get(test_name(node)) if outcome == "failed" else None
                print(f"  {outcome:8s} {node}" + (f"  (deliberate: {note})" if note else ""))
        unexpected = [node for node, outcome in outcomes.items()
                      if outcome in ("failed", "skipped") and test_name(node) not in suite.differences]
        status |= bool(unexpected)
    return status


if __name__ == "__main__":
    sys.exit(main())
