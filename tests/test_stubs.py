"""The committed type stubs of the compiled core (python/entrosum/_core.pyi) match the installed module.

The stub is regenerated here from whichever build of the core this machine loads (``_core_native`` in a
source build, ``_core_avx2`` or another in a wheel) and compared with the stub installed beside
``entrosum/_core.py``, so the same test checks an editable install and a wheel (which must ship it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import entrosum
from entrosum import _core

import make_stubs

PACKAGE = Path(entrosum.__file__).parent


def stub_names(text: str) -> set[str]:
    """Names a stub defines at module level (classes, functions, annotated attributes)."""
    names = set()
    for node in ast.parse(text).body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_committed_stubs_match_the_compiled_module():
    committed = (PACKAGE / "_core.pyi").read_text(encoding="utf-8")
    assert committed == make_stubs.generate(), "python/entrosum/_core.pyi is stale: run python tests/make_stubs.py"


def test_stub_names_every_public_name_of_the_shim_and_nothing_else():
    public = {name for name in vars(_core) if not name.startswith("_")} - {"annotations", "importlib", "os"}
    public.discard("ModuleType")  # the shim's own imports
    defined = stub_names((PACKAGE / "_core.pyi").read_text(encoding="utf-8")) - {"_EntropyModule"}
    assert defined - {"__version__"} == public
    for name in ("gmm_fit", "fit_linear_gaussian", "fit_sparse_coding", "cpu_supports", "entropy", "cpu_variant"):
        assert name in defined


def test_stub_is_independent_of_the_build_and_the_version():
    text = make_stubs.generate()
    assert _core._module.__name__ not in text and "_core_" not in text
    assert "cpu_variant: str\n" in text and "__version__: str\n" in text
    assert repr(_core.cpu_variant) not in text and entrosum.__version__ not in text


def test_normalisation_of_values_and_c_arrays():
    body = ["__all__: list[str] = ['a']", "cpu_variant: str = 'avx2'",
            "def f(data: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], "
            "w: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, \"[m, 1]\"]) -> float:"]
    out = make_stubs.c_arrays_as_ndarrays(make_stubs.drop_values(make_stubs.drop_all(body)))
    assert out == ["cpu_variant: str",
                   "def f(data: numpy.typing.NDArray[numpy.float32], "
                   "w: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, \"[m, 1]\"]) -> float:"]
    assert make_stubs.as_methods(["def g() -> float:", "def h(x: int) -> int:"]) == [
        "    def g(self) -> float:", "    def h(self, x: int) -> int:"]


def test_the_package_declares_itself_typed():
    assert (PACKAGE / "py.typed").is_file()
