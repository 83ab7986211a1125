"""Run-time dispatch between the builds of the compiled core (entrosum/_core.py).

A portable wheel holds several builds (baseline, avx2, avx512); every build this CPU runs must give the same
fit as the one chosen by default, and ENTROSUM_CPU must force a build or refuse clearly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from entrosum import _core

FIT_SCRIPT = """
import json, numpy as np, entrosum
from entrosum import _core
rng = np.random.default_rng(0)
X = np.concatenate([rng.normal(c, 1.0, (400, 5)) for c in (-4.0, 0.0, 4.0)])
gmm = entrosum.GaussianMixture(3, covariance_type="full", random_state=0, tol=1e-10, max_iter=200).fit(X)
ppca = entrosum.PPCA(2).fit(X)
print(json.dumps({"variant": _core.cpu_variant, "lower_bounds": gmm.lower_bounds_.tolist(),
                  "means": gmm.means_.tolist(), "ppca": ppca.score(X)}))
"""


def run_fit(variant: str | None) -> dict:
    env = dict(os.environ)
    env.pop("ENTROSUM_CPU", None)
    if variant is not None:
        env["ENTROSUM_CPU"] = variant
    result = subprocess.run([sys.executable, "-c", FIT_SCRIPT], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_default_is_the_fastest_installed_build_this_cpu_runs():
    runnable = [v for v in _core.installed_variants() if _core.cpu_supports(v)]
    assert runnable, "no runnable build installed"
    assert _core.cpu_variant == runnable[0]


def test_every_runnable_build_gives_the_same_fit():
    reference = run_fit(None)
    runnable = [v for v in _core.installed_variants() if _core.cpu_supports(v)]
    for variant in runnable:
        other = run_fit(variant)
        assert other["variant"] == variant
        # Different instruction sets round differently (FMA, vector widths), so not bit-identical.
        np.testing.assert_allclose(other["lower_bounds"][-1], reference["lower_bounds"][-1], rtol=1e-10)
        np.testing.assert_allclose(other["means"], reference["means"], rtol=1e-8, atol=1e-8)
        assert other["ppca"] == pytest.approx(reference["ppca"], rel=1e-10)


@pytest.mark.parametrize("value, message", [("sse9", "is not one of"), ("generic", "not installed")])
def test_forcing_an_unknown_or_missing_build_is_refused(value, message):
    if value in _core.installed_variants():
        value = next(v for v in ("native", "generic", "baseline") if v not in _core.installed_variants())
    env = dict(os.environ, ENTROSUM_CPU=value)
    result = subprocess.run([sys.executable, "-c", "import entrosum"], capture_output=True, text=True, env=env)
    assert result.returncode != 0
    assert "ENTROSUM_CPU" in result.stderr and message in result.stderr
