"""The compiled core, in the best build this CPU can run (run-time dispatch).

A portable wheel holds the extension compiled once per x86-64 micro-architecture level: ``_core_baseline``
(x86-64), ``_core_avx2`` (x86-64-v3: AVX2, FMA, F16C) and ``_core_avx512`` (x86-64-v4). A local source build
holds one, ``_core_native`` (``-march=native``) or ``_core_generic``. This module imports the fastest one that
is present and that the CPU supports, asking numpy which CPU features it detected, and re-exports its
contents, so the rest of the package uses ``entrosum._core`` whichever build it is.

The environment variable ``ENTROSUM_CPU`` (``baseline``, ``avx2``, ``avx512``, ``native`` or ``generic``)
forces one build, for tests and benchmarks; a build the CPU cannot run is refused with an ImportError.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

# Fastest first. "native" was compiled on and for this machine, so it is preferred when present.
_PREFERENCE = ("native", "avx512", "avx2", "baseline", "generic")

# numpy's names of the CPU features each x86-64 level needs beyond the baseline (AVX512_SKX is
# AVX-512 F, CD, BW, DQ and VL together).
_REQUIRED_FEATURES = {
    "avx2": ("AVX", "AVX2", "FMA3", "F16C"),
    "avx512": ("AVX2", "FMA3", "AVX512F", "AVX512CD", "AVX512_SKX"),
}


def _cpu_features() -> dict[str, bool]:
    try:
        from numpy._core._multiarray_umath import __cpu_features__  # numpy >= 2
    except ImportError:
        from numpy.core._multiarray_umath import __cpu_features__  # numpy 1.x
    return dict(__cpu_features__)


def cpu_supports(variant: str) -> bool:
    """Whether this CPU can run the build ``variant``."""
    required = _REQUIRED_FEATURES.get(variant, ())
    features = _cpu_features() if required else {}
    return all(features.get(name, False) for name in required)


def installed_variants() -> list[str]:
    """Return the builds of the compiled core present in the package, fastest first."""
    from importlib.util import find_spec

    return [variant for variant in _PREFERENCE if find_spec(f"{__package__}._core_{variant}") is not None]


def _load() -> ModuleType:
    forced = os.environ.get("ENTROSUM_CPU", "").strip()
    if forced:
        if forced not in _PREFERENCE:
            raise ImportError(f"ENTROSUM_CPU={forced!r} is not one of {', '.join(_PREFERENCE)}")
        if not cpu_supports(forced):
            raise ImportError(f"ENTROSUM_CPU={forced!r}: this CPU lacks the features that build needs")
        try:
            return importlib.import_module(f"{__package__}._core_{forced}")
        except ModuleNotFoundError:
            installed = ", ".join(installed_variants())
            raise ImportError(f"ENTROSUM_CPU={forced!r}: that build is not installed ({installed} are)") from None
    missing = []
    for variant in _PREFERENCE:
        if not cpu_supports(variant):
            continue
        try:
            return importlib.import_module(f"{__package__}._core_{variant}")
        except ModuleNotFoundError:
            missing.append(variant)
    raise ImportError(f"no build of entrosum's compiled core is installed for this CPU (looked for {missing})")


_module = _load()
globals().update({name: value for name, value in vars(_module).items() if not name.startswith("__")})
__version__: str = _module.__version__
