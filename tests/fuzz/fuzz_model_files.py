"""Fuzz ``entrosum.load`` and the C++ reader with mutated model files (issue 13); run by hand, not by the suite.

    python tests/fuzz/fuzz_model_files.py --files 2000

Mutation i is generated from seed i: byte flips, truncations, replaced or dropped members (arrays of other shapes,
dtypes and values), and edits of the JSON metadata (removed keys, values of other types, nesting). Each file is
loaded by Python (``entrosum.load``) and by the C++ library (``_core.SavedModel``); a model that loads is then used
(score_samples or score, predict_proba or transform, sample) on data of its features. The contract: no crash, and
every refusal is a ValueError whose message names the file (or, after loading, a documented exception). Workers run
the mutations; one that dies is reported with the mutation it was running.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
#: The interpreter's own -S for the workers, so that a run against a copy of the package (on PYTHONPATH, without
#: site-packages' import hooks, as in tests/sanitizers/run.sh) imports that copy.
SITE_FLAGS = ["-S"] if sys.flags.no_site else []
sys.path.insert(0, str(HERE.parent))

DTYPES = ("<f8", "<f4", "<i8", "|u1", "|b1", ">f8", "<c16", "|O", "<U2")


def mutate_metadata(rng: np.random.Generator, document: dict) -> object:
    """One random edit of the metadata dict (in place), or a replacement value."""
    paths = []

    def walk(value: object, path: tuple) -> None:
        paths.append(path)
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, (*path, index))

    walk(document, ())
    path = paths[int(rng.integers(len(paths)))]
    replacements = [None, True, 0, -1, 2**63, 1e300, -0.0, "", "x" * 3, [], {}, [[[[1]]]], {"kind": "array"},
                    "weights_", 3.5, {"a": {"b": None}}]
    if not path:
        return replacements[int(rng.integers(len(replacements)))]
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    action = int(rng.integers(3))
    if action == 0 and isinstance(parent, dict):
        del parent[path[-1]]
    elif action == 1 and isinstance(parent, dict):
        parent[f"{path[-1]}_"] = replacements[int(rng.integers(len(replacements)))]
    else:
        parent[path[-1]] = replacements[int(rng.integers(len(replacements)))]
    return None


def random_array(rng: np.random.Generator) -> np.ndarray:
    ndim = int(rng.integers(0, 4))
    shape = tuple(int(rng.choice([0, 1, 2, 3, 5])) for _ in range(ndim))
    dtype = DTYPES[int(rng.integers(len(DTYPES)))]
    values = rng.normal(size=shape) * float(rng.choice([1.0, 1e300, 1e-300]))
    if rng.random() < 0.2 and values.size:
        values.flat[0] = float(rng.choice([np.nan, np.inf, -1.0]))
    if dtype == "|O":
        return values.astype(object)
    with np.errstate(all="ignore"):
        return values.astype(dtype)


def mutate(rng: np.random.Generator, source: Path, target: Path) -> str:
    """Write a mutated copy of ``source`` to ``target``; return what was done."""
    from hostile_models import metadata_bytes, metadata_of, npy_bytes, read_members, write_members

    members = read_members(source)
    kind = int(rng.integers(6))
    if kind == 0:  # flip bytes anywhere
        content = bytearray(source.read_bytes())
        for _ in range(int(rng.integers(1, 9))):
            content[int(rng.integers(len(content)))] ^= int(rng.integers(1, 256))
        target.write_bytes(bytes(content))
        return "byte flips"
    if kind == 1:  # truncate
        content = source.read_bytes()
        target.write_bytes(content[: int(rng.integers(len(content)))])
        return "truncated"
    names = list(members)
    name = names[int(rng.integers(len(names)))]
    if kind == 2 and name != "metadata.npy":  # a member replaced by another array
        members[name] = npy_bytes(random_array(rng))
        what = f"{name} replaced"
    elif kind == 3:  # a member's .npy bytes flipped (with a valid CRC: the zip is written anew)
        content = bytearray(members[name])
        for _ in range(int(rng.integers(1, 4))):
            content[int(rng.integers(min(len(content), 128)))] ^= int(rng.integers(1, 256))
        members[name] = bytes(content)
        what = f"{name} header bytes flipped"
    elif kind == 4:
        del members[name]
        what = f"{name} dropped"
    else:  # the metadata edited
        document = metadata_of(members)
        replaced = None
        for _ in range(int(rng.integers(1, 4))):
            replaced = mutate_metadata(rng, document)
            if replaced is not None:
                break
        members["metadata.npy"] = metadata_bytes(document if replaced is None else json.dumps(replaced))
        what = "metadata edited"
    write_members(target, members)
    return what


def check_file(path: Path) -> str:
    """Load with both readers and use what loads; raise AssertionError when the contract is broken.

    Returns which readers loaded the file: "refused", "python", "cpp" or "both".
    """
    import entrosum
    from entrosum import _core

    try:
        model = entrosum.load(path)
    except ValueError as error:
        if str(path) not in str(error):
            raise AssertionError(f"load's ValueError does not name the file: {error}") from error
        model = None
    except Exception as error:  # noqa: BLE001
        raise AssertionError(f"load raised {type(error).__name__}: {error}") from error
    try:
        saved = _core.SavedModel(str(path))
    except ValueError:
        saved = None
    except Exception as error:  # noqa: BLE001
        raise AssertionError(f"the C++ reader raised {type(error).__name__}: {error}") from error
    rng = np.random.default_rng(0)
    if saved is not None:
        X = rng.poisson(1.0, (7, max(int(saved.n_features), 1))).astype(np.float64)
        for method in ("score_samples", "score"):
            try:
                getattr(saved, method)(X)
            except ValueError:
                pass
    if model is not None:
        X = rng.poisson(1.0, (7, model.n_features_in_)).astype(np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for method in ("score_samples", "score", "predict_proba", "transform", "sample"):
                if hasattr(model, method):
                    try:
                        getattr(model, method)(*((3,) if method == "sample" else (X,)))
                    except (ValueError, TypeError, MemoryError) as error:
                        if not str(error):
                            raise AssertionError(f"{method} raised {type(error).__name__} without a message") \
                                from error
    return {(False, False): "refused", (True, False): "python", (False, True): "cpp", (True, True): "both"}[
        (model is not None, saved is not None)]


def worker(start: int, stop: int, directory: str) -> None:
    from hostile_models import fitted_models

    sources = list(fitted_models(Path(directory)).values())
    for index in range(start, stop):
        print(json.dumps({"start": index}), flush=True)
        rng = np.random.default_rng(index)
        target = Path(directory) / f"mutated_{index}.npz"
        what = mutate(rng, sources[index % len(sources)], target)
        try:
            loaded = check_file(target)
            print(json.dumps({"done": index, "outcome": "ok", "loaded": loaded}), flush=True)
        except AssertionError as error:
            print(json.dumps({"done": index, "outcome": "failed", "what": what, "message": str(error),
                              "trace": traceback.format_exc()[-800:]}), flush=True)
        target.unlink()


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=60.0)
    arguments = parser.parse_args()
    counts = {"files": 0, "ok": 0, "failed": 0, "crashed": 0, "hung": 0}
    loaded = {"refused": 0, "python": 0, "cpp": 0, "both": 0}
    problems = []
    started = time.perf_counter()
    next_index = 0
    with tempfile.TemporaryDirectory() as directory:
        while next_index < arguments.files:
            command = [sys.executable, *SITE_FLAGS, __file__, "--worker", str(next_index), str(arguments.files),
                       directory]
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            current = next_index
            for line in process.stdout:
                record = json.loads(line)
                if "start" in record:
                    current = record["start"]
                    continue
                counts["files"] += 1
                counts[record["outcome"]] += 1
                if "loaded" in record:
                    loaded[record["loaded"]] += 1
                if record["outcome"] == "failed":
                    problems.append(record)
                next_index = record["done"] + 1
            process.wait()
            if process.returncode != 0:
                counts["files"] += 1
                counts["crashed"] += 1
                problems.append({"case": current, "crashed": process.returncode,
                                 "stderr": process.stderr.read()[-800:]})
                next_index = current + 1
    print(f"files {counts['files']}  ok {counts['ok']}  failed {counts['failed']}  crashed {counts['crashed']}  "
          f"{time.perf_counter() - started:.0f} s")
    print("loaded by: " + "  ".join(f"{key} {value}" for key, value in loaded.items()))
    for problem in problems[:10]:
        print("   ", json.dumps(problem)[:1500])
    return 1 if counts["failed"] or counts["crashed"] else 0


if __name__ == "__main__":
    sys.exit(main())
