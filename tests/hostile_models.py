"""A corpus of hostile model files, generated deterministically from small fitted models (issue 13).

Every file is something ``entrosum.load`` (and the C++ ``entrosum::load_model``) must refuse with a ValueError (a
FormatError in C++) that names the file: truncated, bit-flipped, wrong shapes, huge declared shapes, nested or
mistyped metadata, unsupported zip features, a pickle inside. ``write_corpus(directory)`` writes them and returns
{path: what is wrong}; ``python tests/hostile_models.py DIRECTORY`` does the same from the command line (the
sanitizer run feeds the directory to the C++ reader). ``rewrite`` makes a changed copy of a model file and is shared
with the fuzzing script.
"""

from __future__ import annotations

import io
import json
import struct
import sys
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def read_members(path: Path) -> dict[str, bytes]:
    """The raw bytes of every member of a model file, in order."""
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def npy_bytes(array: np.ndarray) -> bytes:
    stream = io.BytesIO()
    np.lib.format.write_array(stream, np.asanyarray(array), allow_pickle=True)
    return stream.getvalue()


def write_members(path: Path, members: dict[str, bytes]) -> None:
    """Write members as np.savez does: a stored (uncompressed) zip archive."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)


def metadata_of(members: dict[str, bytes]) -> dict:
    array = np.lib.format.read_array(io.BytesIO(members["metadata.npy"]))
    return json.loads(array.tobytes().decode("utf-8"))


def metadata_bytes(metadata: Any) -> bytes:
    text = metadata if isinstance(metadata, str) else json.dumps(metadata)
    return npy_bytes(np.frombuffer(text.encode("utf-8"), dtype=np.uint8))


def rewrite(source: Path, target: Path, *, arrays: dict[str, np.ndarray] | None = None,
            metadata: Callable[[dict], Any] | None = None, raw: dict[str, bytes] | None = None,
            drop: tuple[str, ...] = ()) -> Path:
    """Copy a model file, replacing arrays (by name, without .npy), editing the metadata (a function that changes the
    dict in place, or returns a replacement: any JSON value or raw text), replacing raw members, dropping members."""
    members = read_members(Path(source))
    for name, array in (arrays or {}).items():
        members[name + ".npy"] = npy_bytes(array)
    if metadata is not None:
        document = metadata_of(members)
        replaced = metadata(document)
        members["metadata.npy"] = metadata_bytes(document if replaced is None else replaced)
    for name, content in (raw or {}).items():
        members[name] = content
    for name in drop:
        members.pop(name, None)
    write_members(Path(target), members)
    return Path(target)


def fitted_models(directory: Path) -> dict[str, Path]:
    """Small fitted models of every family, saved in ``directory``."""
    import entrosum

    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(centre, 1.0, (40, 3)) for centre in (-3.0, 3.0)])
    counts = rng.poisson(3.0, (60, 3)).astype(np.float64)
    models = {
        "gmm_full": (entrosum.GaussianMixture(2, random_state=0), X),
        "gmm_diag": (entrosum.GaussianMixture(2, covariance_type="diag", random_state=0), X),
        "gmm_tied_diag": (entrosum.GaussianMixture(2, covariance_type="tied_diag", random_state=0), X),
        "gmm_tied_spherical": (entrosum.GaussianMixture(2, covariance_type="tied_spherical", random_state=0), X),
        "bernoulli": (entrosum.BernoulliMixture(2, random_state=0), (X > 0).astype(np.float64)),
        "poisson": (entrosum.PoissonMixture(2, random_state=0), counts),
        "binomial": (entrosum.BinomialMixture(2, n_trials=np.array([20, 30, 40]), random_state=0), counts),
        "exponential": (entrosum.ExponentialMixture(2, random_state=0), counts + 0.5),
        "gamma": (entrosum.GammaMixture(2, random_state=0), counts + 0.5),
        "mixed": (entrosum.MixedMixture(2, {"gaussian": [0], "poisson": [1], "categorical": [2]}, random_state=0),
                  np.column_stack([X[:60, 0], counts[:, 1], counts[:, 2] % 3])),
        "multinomial": (entrosum.MultinomialMixture(2, random_state=0), counts + 1.0),
        "categorical": (entrosum.CategoricalMixture(2, n_levels=12, random_state=0), np.minimum(counts, 11.0)),
        "ppca": (entrosum.PPCA(2), X),
        "fa": (entrosum.FactorAnalysis(1, random_state=0), X),
        "sparse": (entrosum.SparseCoding(2, max_iter=5, random_state=0), X),
        "bsc": (entrosum.BinarySparseCoding(2, max_iter=5, random_state=0), X),
        "sbn": (entrosum.SigmoidBeliefNet(2, posterior="truncated", n_states=2, max_iter=5, random_state=0),
                (X > 0).astype(np.float64)),
        "lvae": (entrosum.LinearVAE(1, random_state=0), X),
    }
    paths = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, (model, data) in models.items():
            paths[name] = directory / f"valid_{name}.npz"
            model.fit(data).save(paths[name])
    return paths


def _flip(content: bytes, offset: int, mask: int = 0x01) -> bytes:
    return content[:offset] + bytes([content[offset] ^ mask]) + content[offset + 1:]


def _with_header(array_bytes: bytes, header: str) -> bytes:
    """A .npy image (version 1.0) with ``header`` as its dict text and the data of ``array_bytes``."""
    length = struct.unpack("<H", array_bytes[8:10])[0]
    data = array_bytes[10 + length:]
    text = header.encode("latin1")
    text += b" " * ((64 - (10 + len(text) + 1) % 64) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + data


def _set_central_directory(path: Path, member: str, *, flag: int | None = None, method: int | None = None) -> None:
    """Change the general-purpose flag or compression method of a member in both its local and central headers."""
    content = bytearray(path.read_bytes())
    name = member.encode()
    at = 0
    while (at := content.find(b"PK", at)) >= 0:
        signature = bytes(content[at:at + 4])
        if signature == b"PK\x03\x04" and content[at + 30:at + 30 + len(name)] == name:
            if flag is not None:
                content[at + 6:at + 8] = struct.pack("<H", flag)
            if method is not None:
                content[at + 8:at + 10] = struct.pack("<H", method)
        if signature == b"PK\x01\x02" and content[at + 46:at + 46 + len(name)] == name:
            if flag is not None:
                content[at + 8:at + 10] = struct.pack("<H", flag)
            if method is not None:
                content[at + 10:at + 12] = struct.pack("<H", method)
        at += 2
    path.write_bytes(bytes(content))


def write_corpus(directory: Path) -> dict[Path, str]:
    """Write the hostile files into ``directory``; return {path: what is wrong with it}."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    valid = fitted_models(directory)
    corpus: dict[Path, str] = {}

    def add(name: str, problem: str, source: str = "gmm_full", **changes: Any) -> None:
        path = directory / f"{name}.npz"
        rewrite(valid[source], path, **changes)
        corpus[path] = problem

    def add_bytes(name: str, problem: str, content: bytes) -> None:
        path = directory / f"{name}.npz"
        path.write_bytes(content)
        corpus[path] = problem

    whole = valid["gmm_full"].read_bytes()
    # truncated and not a zip archive
    for length in (0, 4, 21, len(whole) // 2, len(whole) - 1, len(whole) - 22):
        add_bytes(f"truncated_{length}", f"truncated to {length} bytes", whole[:length])
    add_bytes("not_zip", "text, not a zip archive", b"this is not a model\n" * 8)
    # bit flips in raw bytes: in members' data (the CRC-32 fails) and in the zip records (the structure breaks)
    with zipfile.ZipFile(valid["gmm_full"]) as archive:
        infos = {info.filename: info for info in archive.infolist()}
        directory_start = min(len(whole) - 22, whole.rfind(b"PK\x01\x02", 0, len(whole) - 22))
    offsets = {"local header signature": 1, "end record signature": len(whole) - 22,
               "central directory signature": directory_start + 1}
    for member in ("metadata.npy", "weights_.npy", "precisions_cholesky_.npy"):
        info = infos[member]
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
        offsets[f"{member} header"] = start + 20
        offsets[f"{member} data"] = start + info.file_size - 3
    for what, offset in offsets.items():
        add_bytes(f"bitflip_{offset}", f"bit flipped at byte {offset} ({what})", _flip(whole, offset, 0x10))
    # .npy headers with a valid CRC: damaged text, odd dtypes, huge declared shapes
    weights = npy_bytes(np.array([0.5, 0.5]))
    headers = {
        "header_syntax": ("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), ", "an unterminated header dict"),
        "header_token": ("{'descr': '<f8, 'fortran_order': False, 'shape': (2,), }", "an unterminated string"),
        "header_not_dict": ("[1, 2, 3]", "a list instead of the header dict"),
        "header_huge_shape": ("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }",
                              "a declared 1e12 elements"),
        "header_overflow_shape": ("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, "
                                  "4294967296), }", "a declared shape whose product overflows 64 bits"),
        "header_negative_shape": ("{'descr': '<f8', 'fortran_order': False, 'shape': (-2,), }", "a negative extent"),
        "header_object": ("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", "an object dtype"),
        "header_string_dtype": ("{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }", "a string dtype"),
        "header_bad_dtype": ("{'descr': '<q9', 'fortran_order': False, 'shape': (2,), }", "no such dtype"),
        "header_nested": ("{'descr': '<f8', 'fortran_order': False, 'shape': " + "(" * 3000 + ")" * 3000 + ", }",
                          "a deeply nested shape"),
    }
    for name, (header, problem) in headers.items():
        add(name, problem, raw={"weights_.npy": _with_header(weights, header)})
    add("bad_magic", "a member without the .npy magic", raw={"weights_.npy": b"\x93NUMPX" + weights[6:]})
    add("npy_version_9", "an unknown .npy version", raw={"weights_.npy": weights[:6] + b"\x09\x00" + weights[8:]})
    add("pickle_inside", "a pickled object array", arrays={"weights_": np.array([{"a": 1}, "b"], dtype=object)})
    add("truncated_member", "a member shorter than its header says", raw={"weights_.npy": weights[:-3]})
    # wrong shapes and values of the fitted arrays
    add("weights_empty", "weights_ with no components", arrays={"weights_": np.zeros(0)})
    add("weights_short", "weights_ of one entry for two components", arrays={"weights_": np.ones(1)})
    add("means_empty", "means_ with no rows", arrays={"means_": np.zeros((0, 3))})
    add("precisions_empty", "precisions_cholesky_ empty", arrays={"precisions_cholesky_": np.zeros((0, 3, 3))})
    add("precisions_2d", "precisions_cholesky_ of the wrong rank", arrays={"precisions_cholesky_": np.eye(3)})
    add("weights_nan", "a NaN weight", arrays={"weights_": np.array([np.nan, 0.5])})
    add("weights_int8", "weights_ as a 2-D array", arrays={"weights_": np.ones((2, 1), dtype=np.int8)})
    add("ppca_mean_empty", "PPCA mean_ empty", "ppca", arrays={"mean_": np.zeros(0)})
    add("ppca_components_transposed", "PPCA components_ transposed", "ppca",
        arrays={"components_": np.zeros((3, 2))})
    add("ppca_noise_negative", "a negative noise variance", "ppca", arrays={"noise_variance_": np.array(-1.0)})
    add("fa_noise_short", "FA noise_variance_ too short", "fa", arrays={"noise_variance_": np.ones(1)})
    add("sparse_components_empty", "no atoms", "sparse", arrays={"components_": np.zeros((0, 3))})
    add("sparse_scales_empty", "no scales", "sparse", arrays={"scales_": np.zeros(0)})
    add("bernoulli_means_outside", "probabilities above 1", "bernoulli", arrays={"means_": np.full((2, 3), 2.0)})
    add("poisson_means_short", "rates of the wrong shape", "poisson", arrays={"means_": np.ones((2, 2))})
    add("binomial_trials_short", "numbers of trials of the wrong shape", "binomial", arrays={"n_trials_": np.ones(2)})
    add("binomial_trials_fraction", "a fractional number of trials", "binomial",
        arrays={"n_trials_": np.array([20.0, 2.5, 40.0])})
    add("binomial_trials_zero", "no trials", "binomial", arrays={"n_trials_": np.array([20.0, 0.0, 40.0])})
    add("binomial_means_above_trials", "mean counts above the numbers of trials", "binomial",
        arrays={"n_trials_": np.ones(3)})
    add("binomial_trials_missing", "the numbers of trials missing", "binomial", drop=("n_trials_.npy",))
    add("exponential_means_zero", "a mean of 0", "exponential", arrays={"means_": np.zeros((2, 3))})
    add("gamma_shapes_short", "shapes of the wrong shape", "gamma", arrays={"shapes_": np.ones((2, 2))})
    add("gamma_shapes_zero", "a shape of 0", "gamma", arrays={"shapes_": np.zeros((2, 3))})
    add("gamma_shapes_missing", "the shapes missing", "gamma", drop=("shapes_.npy",))
    add("mixed_variances_short", "variances of the wrong shape", "mixed", arrays={"variances_": np.ones((2, 2))})
    add("mixed_variances_zero", "a variance of 0", "mixed", arrays={"variances_": np.zeros((2, 1))})
    add("mixed_probabilities_short", "level probabilities of the wrong shape", "mixed",
        arrays={"probabilities_": np.full((2, 2), 0.5)})
    add("mixed_levels_zero", "a categorical column of no levels", "mixed", arrays={"n_levels_": np.zeros(1)})
    add("mixed_levels_missing", "the numbers of levels missing", "mixed", drop=("n_levels_.npy",))
    add("multinomial_means_unnormalised", "probabilities that do not sum to 1", "multinomial",
        arrays={"means_": np.full((2, 3), 0.5)})
    add("categorical_levels_short", "numbers of levels of the wrong shape", "categorical",
        arrays={"n_levels_": np.full(2, 12)})
    add("categorical_levels_zero", "no levels", "categorical", arrays={"n_levels_": np.array([12, 0, 12])})
    add("categorical_means_narrow", "probabilities of fewer levels than n_levels_", "categorical",
        arrays={"n_levels_": np.array([12, 12, 13])})
    add("categorical_levels_missing", "the numbers of levels missing", "categorical", drop=("n_levels_.npy",))
    add("missing_weights", "a fitted array missing", drop=("weights_.npy",))
    add("missing_metadata", "no metadata", drop=("metadata.npy",))
    add("monitor_field_missing", "a monitor array missing", drop=("monitor/elbo.npy",))
    add("monitor_ragged", "monitor arrays of different lengths", arrays={"monitor/elbo": np.zeros(1000)})
    # metadata of the wrong types, values, depth
    edits: dict[str, tuple[Callable[[dict], Any], str]] = {
        "meta_list": (lambda m: [m], "metadata a list"),
        "meta_text": (lambda m: "{not json", "metadata not JSON"),
        "meta_latin1": (lambda m: "{\"format\": \"\xff\"}", "metadata not UTF-8 JSON"),
        "meta_params_list": (lambda m: m.update(params=[1, 2]), "params a list"),
        "meta_params_nested": (lambda m: m["params"].update(tol={"a": [1]}), "a parameter that is an object"),
        "meta_param_unknown": (lambda m: m["params"].update(bogus=1), "an unknown parameter"),
        "meta_param_wrong_type": (lambda m: m["params"].update(n_components="two"), "n_components a string"),
        "meta_param_huge": (lambda m: m["params"].update(n_components=10**30), "n_components of 1e30"),
        "meta_fitted_text": (lambda m: m.update(fitted="weights_"), "fitted a string"),
        "meta_fitted_entry": (lambda m: m["fitted"].update(weights_=[1]), "a fitted entry a list"),
        "meta_fitted_kind": (lambda m: m["fitted"].update(weights_={"kind": "pickle"}), "an unknown kind"),
        "meta_fitted_int_text": (lambda m: m["fitted"].update(n_iter_={"kind": "int", "value": "12"}),
                                 "an int given as text"),
        "meta_fitted_scalar_array": (lambda m: m["fitted"].update(weights_={"kind": "scalar"}),
                                     "an array declared a scalar"),
        "meta_set_method": (lambda m: m["fitted"].update(fit={"kind": "int", "value": 1}), "sets the method fit"),
        "meta_set_private": (lambda m: m["fitted"].update(_online_state={"kind": "str", "value": "x"}),
                             "sets a private attribute"),
        "meta_set_dunder": (lambda m: m["fitted"].update(__dict__={"kind": "json", "value": {}}), "sets __dict__"),
        "meta_monitor_int": (lambda m: m.update(monitor=5), "monitor a number"),
        "meta_monitor_fields": (lambda m: m["monitor"].update(fields=7), "monitor fields a number"),
        "meta_monitor_reason": (lambda m: m["monitor"].update(stop_reason=["tol"]), "stop_reason a list"),
        "meta_monitor_tol": (lambda m: m["monitor"].update(tol="small"), "tol a string"),
        "meta_version": (lambda m: m.update(format_version=2), "another format version"),
        "meta_version_bool": (lambda m: m.update(format_version=True), "format_version true"),
        "meta_model_unknown": (lambda m: m.update(model="Pickle"), "an unknown model class"),
        "meta_model_list": (lambda m: m.update(model=["GaussianMixture"]), "model a list"),
        "meta_n_features_huge": (lambda m: m.update(n_features=1e300), "n_features of 1e300"),
        "meta_array_params": (lambda m: m.update(array_params=["__init__"]), "an array parameter not the model's"),
        "meta_nested": (lambda m: json.dumps(m)[:-1] + ', "deep": ' + "[" * 100000 + "]" * 100000 + "}",
                        "arrays nested 100,000 deep"),
        "meta_nested_65": (lambda m: m.update(deep=json.loads("[" * 70 + "]" * 70)), "arrays nested 70 deep"),
        "meta_big_int": (lambda m: json.dumps(m)[:-1] + ', "big": ' + "9" * 5000 + "}", "a 5000-digit number"),
        "meta_dtype": (lambda m: m.update(dtype="complex128"), "an unknown dtype"),
    }
    for name, (edit, problem) in edits.items():
        add(name, problem, metadata=edit)
    add("meta_uint16", "metadata of dtype uint16", raw={"metadata.npy": npy_bytes(np.arange(4, dtype=np.uint16))})
    add("sparse_max_iter_huge", "e_step_max_iter beyond int", "sparse",
        metadata=lambda m: m["params"].update(e_step_max_iter=1e300))
    # unsupported zip features: a flag (patched data, encryption) or compression method set on a member
    for name, flag, method, problem in (("zip_flag_patched", 0x20, None, "the 'compressed patched data' flag"),
                                        ("zip_flag_encrypted", 0x01, None, "the encryption flag"),
                                        ("zip_method_99", None, 99, "compression method 99 (AES)"),
                                        ("zip_method_deflate", None, 8, "a deflated member")):
        path = directory / f"{name}.npz"
        path.write_bytes(whole)
        _set_central_directory(path, "weights_.npy", flag=flag, method=method)
        corpus[path] = problem
    for path in valid.values():  # keep only the hostile ones
        path.unlink()
    return corpus


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/hostile_models.py DIRECTORY")
    for path, problem in write_corpus(Path(sys.argv[1])).items():
        print(f"{path.name}\t{problem}")
