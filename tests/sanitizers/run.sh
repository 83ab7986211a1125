#!/usr/bin/env bash
# The sanitizer run (issue 13), called by .ci/run: the C++ library and the Python extension built with
# AddressSanitizer and UndefinedBehaviorSanitizer (every finding aborts) and with Eigen's assertions on (no NDEBUG,
# EIGEN_INTERNAL_DEBUGGING), then
#   1. tests/sanitizers/hostile_inputs (C++): the model reader on the hostile corpus of tests/hostile_models.py,
#      the JSON and .npy parsers on hostile text, every model's fit on tiny shapes and extreme values;
#   2. a focused part of the Python tests against the sanitized extension: bad input, tampered attributes, model
#      files, tiny shapes (Python itself is not instrumented: libasan is preloaded, leaks are not checked). The
#      property-based tests are left to the normal run (at -O0 with ASan they take many minutes).
#
#   bash tests/sanitizers/run.sh [WORK_DIR]
# Cost: about 8 CPU-minutes to build (4 min with -j2 on 2 free cores), 1-2 CPU-minutes to run.
#
# Needs the build requirements of CONTRIBUTING.md (cmake, ninja, pybind11, cmeel-eigen, nlohmann-json) and the test
# extra in the Python on PATH (or $PYTHON). One CPU build of the extension ('generic') and one library are compiled.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="${1:-$(mktemp -d)}"
python="${PYTHON:-python}"
started=$SECONDS
mkdir -p "$work"

sanitize="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
generator=()
if command -v ninja > /dev/null; then generator=(-G Ninja); fi
cmake -S "$repo/tests/sanitizers" -B "$work/build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Sanitize \
  -DCMAKE_CXX_FLAGS="-O0 -g1 $sanitize -DEIGEN_INTERNAL_DEBUGGING" \
  -DCMAKE_EXE_LINKER_FLAGS="$sanitize" -DCMAKE_SHARED_LINKER_FLAGS="$sanitize" -DCMAKE_MODULE_LINKER_FLAGS="$sanitize" \
  -DENTROSUM_SOURCE_DIR="$repo" -DPython_EXECUTABLE="$(command -v "$python")" \
  -DCMAKE_PREFIX_PATH="$("$python" -m cmeel cmake 2> /dev/null | tr ':' ';')" -Dpybind11_DIR="$("$python" -m pybind11 --cmakedir)" > "$work/configure.log"
cmake --build "$work/build" -j2 > "$work/build.log" || { tail -50 "$work/build.log"; exit 1; }
echo "sanitizer build: $((SECONDS - started)) s"

export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

# 1. the C++ program, on the corpus written by the installed (uninstrumented) package
"$python" "$repo/tests/hostile_models.py" "$work/corpus" > /dev/null
"$work/build/hostile_inputs" "$work/corpus"

# 2. the Python tests against the instrumented extension: a copy of the package with it, first on the path; python
# runs with -S, so that no .pth file (an editable install's import hook) brings the uninstrumented one back
rm -rf "$work/package" && mkdir -p "$work/package"
cp -r "$repo/python/entrosum" "$work/package/"
find "$work/package" -name "_core_*.so" -delete
cp "$(find "$work/build" -name "_core_generic*.so" | head -1)" "$work/package/entrosum/"
paths="$("$python" -c 'import sys; print(":".join(p for p in sys.path[1:] if p))')"
# libstdc++ preloaded after libasan: Python does not link it, and ASan's interceptor of __cxa_throw must find the real
# one when it starts (otherwise the first C++ exception, e.g. a ValueError from a binding, aborts: "CHECK failed:
# real___cxa_throw")
preload="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libstdc++.so)"
cd "$repo"
LD_PRELOAD="$preload" ENTROSUM_CPU=generic PYTHONPATH="$work/package:$paths" OMP_NUM_THREADS=1 \
  "$python" -S -m pytest -q -p no:cacheprovider --basetemp "$work/pytest" \
  tests/test_hardening.py tests/test_model_io.py tests/test_validation.py \
  "tests/test_binary_streams.py::test_statistics_merge_pickle_and_refuse_mismatches" \
  "tests/test_csr_input.py::test_malformed_csr_arrays_raise_instead_of_crashing" \
  "tests/test_csr_input.py::test_csr_scores_equal_the_dense_scores"
echo "sanitizer run: $((SECONDS - started)) s"
