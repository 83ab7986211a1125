"""The examples of the README's "Large data" section run as written (in a temporary directory) and do what the
text around them says."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def _section_code(title: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end if end >= 0 else None], flags=re.S)


# A LocalCluster warns when another process holds the default dashboard port: not this test's concern.
@pytest.mark.filterwarnings("ignore:Port .* is already in use:UserWarning")
def test_large_data_examples_run(tmp_path, monkeypatch, capsys):
    blocks = _section_code("Large data")
    assert len(blocks) == 3  # memory-mapped and chunked files, partial_fit, Dask
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for code in blocks:
        exec(compile(code, str(README), "exec"), namespace)
    # the last block's Dask fit against an in-memory fit made here
    reference = namespace["entrosum"].GaussianMixture(3, covariance_type="diag", random_state=0).fit(namespace["X"])
    np.testing.assert_allclose(namespace["gmm"].means_, reference.means_, atol=1e-10)
    assert (tmp_path / "big.npy").is_file() and (tmp_path / "part3.npy").is_file()  # the first block's files
    difference = float(capsys.readouterr().out.split()[-1])
    assert difference < 1e-10
