"""scikit-learn's own test files pass against entrosum with only the estimator's import changed.

``tests/sklearn_suites/run_sklearn_suites.py`` copies the test modules that ship in the installed scikit-learn wheel
into a temporary directory, replaces the one import line, and runs them with pytest (float32 tests included). Here
every test must pass, except the ones listed in that script: left out because they call scikit-learn's private
functions (or take array-API inputs), or failing where entrosum deliberately differs (each difference is in the
estimator's docstring). Nothing may be skipped.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "sklearn_suites"))
import run_sklearn_suites as suites  # noqa: E402


@pytest.mark.parametrize("name", list(suites.SUITES))
def test_scikit_learn_test_file_passes_with_only_the_import_changed(name, tmp_path):
    suite = suites.SUITES[name]
    outcomes = suites.run_suite(name, tmp_path)
    ran = {node: outcome for node, outcome in outcomes.items() if outcome != "excluded"}
    assert ran, outcomes  # the module was found, collected and run
    assert "skipped" not in ran.values(), [node for node, outcome in ran.items() if outcome == "skipped"]
    unexpected = sorted(node for node, outcome in ran.items()
                        if outcome == "failed" and suites.test_name(node) not in suite.differences)
    assert not unexpected, unexpected
    # each listed difference is real: the test exists and fails (so the list stays exact)
    for test in suite.differences:
        assert any(suites.test_name(node) == test and outcome == "failed" for node, outcome in ran.items()), test
