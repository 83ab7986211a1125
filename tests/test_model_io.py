"""Saved models (docs/model_format.md): exact round trips for every model, the C++ reader against the Python
one, and clear errors for files that are corrupt, truncated, compressed, of another version or model."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

import entrosum
from entrosum import _core

from conftest import model_cases

CASES = model_cases()


@pytest.fixture(scope="module")
def fitted() -> dict:
    """Every model case fitted in float64 and float32."""
    models = {}
    for dtype in (np.float64, np.float32):
        for name, (make, data) in model_cases(dtype).items():
            models[f"{name}-{np.dtype(dtype).name}"] = (make().fit(data), data)
    return models


def scores(model, data) -> np.ndarray:
    """Per-sample log-likelihoods, or the ES-ELBO per sample for sparse coding (no closed-form likelihood)."""
    return model.score_samples(data) if hasattr(model, "score_samples") else np.array([model.score(data)])


def assert_same_model(loaded, original) -> None:
    """Same class, parameters, fitted attributes (values, dtypes and Python types) and monitor."""
    assert type(loaded) is type(original)
    assert loaded.get_params() == original.get_params()
    fitted_names = sorted(n for n in vars(original) if n.endswith("_") and not n.startswith("_"))
    assert sorted(n for n in vars(loaded) if n.endswith("_") and not n.startswith("_")) == fitted_names
    for name in fitted_names:
        if name == "monitor_":
            continue
        a, b = getattr(loaded, name), getattr(original, name)
        assert type(a) is type(b), name
        if isinstance(b, (np.ndarray, np.generic)):
            assert a.dtype == b.dtype and np.shape(a) == np.shape(b), name
            np.testing.assert_array_equal(a, b, err_msg=name)
        else:
            assert a == b, name
    ma, mb = loaded.monitor_, original.monitor_
    assert ma.history.keys() == mb.history.keys()
    for field in mb.history:
        assert ma.history[field].dtype == mb.history[field].dtype
        np.testing.assert_array_equal(ma.history[field], mb.history[field], err_msg=field)
    for attribute in ("tol", "gap_tol", "max_iter", "verbose", "model", "stop_reason", "converged", "setup_time"):
        assert getattr(ma, attribute) == getattr(mb, attribute), attribute


@pytest.mark.parametrize("case", [f"{name}-{dtype}" for dtype in ("float64", "float32") for name in CASES])
def test_round_trip_is_exact(fitted, case, tmp_path) -> None:
    model, data = fitted[case]
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = entrosum.load(path)
    assert_same_model(loaded, model)
    assert_same_model(type(model).load(path), model)
    np.testing.assert_array_equal(scores(loaded, data), scores(model, data))
    np.testing.assert_array_equal(scores(pickle.loads(pickle.dumps(loaded)), data), scores(model, data))


@pytest.mark.parametrize("case", [f"{name}-{dtype}" for dtype in ("float64", "float32") for name in CASES])
def test_cpp_reader_gives_the_python_scores(fitted, case, tmp_path) -> None:
    model, data = fitted[case]
    path = tmp_path / "model.npz"
    model.save(path)
    saved = _core.SavedModel(str(path))
    assert saved.model == type(model).__name__
    assert saved.dtype == np.dtype(data.dtype).name
    assert saved.n_features == data.shape[1]
    assert saved.entrosum_version == entrosum.__version__
    assert saved.metadata == json.loads(np.load(path)["metadata"].tobytes())
    # the same parameters in double, the same kernels: the same numbers
    if hasattr(model, "score_samples"):
        # score_samples gives the doubles in the data's dtype (as scikit-learn), score their mean in that dtype
        np.testing.assert_array_equal(saved.score_samples(data).astype(data.dtype), model.score_samples(data))
        rel = 1e-14 if data.dtype == np.float64 else 1e-6
        assert saved.score(data) == pytest.approx(model.score(data), rel=rel, abs=0)  # np.mean vs Eigen's mean
    else:
        assert saved.score(data) == model.score(data)
        with pytest.raises(ValueError, match="no closed-form log-likelihood"):
            saved.score_samples(data)
    parameters = saved.parameters()
    if "scales" in parameters:
        np.testing.assert_array_equal(parameters["components"], model.components_.T.astype(np.float64))
        np.testing.assert_array_equal(parameters["scales"], model.scales_.astype(np.float64))
        assert parameters["noise_variance"] == float(model.noise_variance_)
        assert parameters["posterior"] == model.posterior
    elif "means" in parameters:
        np.testing.assert_array_equal(parameters["means"], model.means_.astype(np.float64))
        np.testing.assert_array_equal(parameters["weights"], model.weights_.astype(np.float64))
    else:
        np.testing.assert_array_equal(parameters["components"], model.components_.T.astype(np.float64))
        np.testing.assert_array_equal(parameters["noise_variance"],
                                      np.broadcast_to(model.noise_variance_, data.shape[1]).astype(np.float64))


def test_pickle_round_trip_keeps_every_model(fitted) -> None:
    for model, _data in fitted.values():
        assert_same_model(pickle.loads(pickle.dumps(model)), model)


def test_unfitted_model_cannot_be_saved(tmp_path) -> None:
    with pytest.raises(entrosum.NotFittedError):
        entrosum.GaussianMixture(2).save(tmp_path / "model.npz")


def test_save_uses_the_name_as_given_and_keeps_array_parameters(tmp_path) -> None:
    make, data = CASES["gmm_diag"]
    means_init = data[[0, 200, 400]]
    model = entrosum.GaussianMixture(3, covariance_type="diag", means_init=means_init, random_state=0).fit(data)
    path = tmp_path / "model.bin"
    model.save(path)
    assert path.is_file() and not (tmp_path / "model.bin.npz").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]  # no temporary file left behind
    loaded = entrosum.load(path)
    np.testing.assert_array_equal(loaded.means_init, means_init)
    np.testing.assert_array_equal(loaded.means_, model.means_)


def test_random_generator_is_not_saved(tmp_path) -> None:
    make, data = CASES["fa"]
    model = entrosum.FactorAnalysis(2, random_state=np.random.default_rng(0)).fit(data)
    model.save(tmp_path / "model.npz")
    loaded = entrosum.load(tmp_path / "model.npz")
    assert loaded.random_state is None
    np.testing.assert_array_equal(loaded.components_, model.components_)


# -- rejected files ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("saved") / "ppca.npz"
    fitted["ppca_em-float64"][0].save(path)
    return path


def rewrite(source: Path, target: Path, *, metadata=None, drop=(), compressed=False) -> Path:
    """A copy of a saved model with its metadata replaced or members dropped, written with numpy."""
    with np.load(source) as archive:
        arrays = {name: archive[name] for name in archive.files if name not in drop}
    if metadata is not None:
        arrays["metadata"] = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    with open(target, "wb") as stream:
        (np.savez_compressed if compressed else np.savez)(stream, **arrays)
    return target


def metadata_of(path: Path) -> dict:
    return json.loads(np.load(path)["metadata"].tobytes())


def assert_rejected(path: Path, match: str, expected: type | None = None) -> None:
    """Both readers refuse the file with a ValueError whose message matches."""
    with pytest.raises(ValueError, match=match):
        entrosum.load(path) if expected is None else expected.load(path)
    with pytest.raises(ValueError, match=match):
        _core.SavedModel(str(path))


def test_truncated_file_is_rejected(saved, tmp_path) -> None:
    data = saved.read_bytes()
    for keep in (len(data) - 10, len(data) // 2, 100, 0):
        path = tmp_path / f"cut{keep}.npz"
        path.write_bytes(data[:keep])
        assert_rejected(path, "not a zip archive|truncated|not an .npz archive")


def test_corrupt_array_fails_its_checksum(saved, tmp_path) -> None:
    data = bytearray(saved.read_bytes())
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("components_.npy")
    local_extra = int.from_bytes(data[info.header_offset + 28:info.header_offset + 30], "little")
    start = info.header_offset + 30 + len(info.filename) + local_extra
    data[start + info.file_size - 3] ^= 0x40  # inside the last value of the array
    path = tmp_path / "flipped.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="components_.*corrupt"):
        entrosum.load(path)
    with pytest.raises(ValueError, match="components_.*CRC-32"):
        _core.SavedModel(str(path)).score_samples(np.zeros((1, 6)))


def test_other_files_are_rejected(saved, tmp_path) -> None:
    path = tmp_path / "random.npz"
    path.write_bytes(np.random.default_rng(0).bytes(5000))
    assert_rejected(path, "not a zip archive|not an .npz archive")
    np.save(tmp_path / "plain.npy", np.ones(3))
    assert_rejected(tmp_path / "plain.npy", "not a zip archive|not an .npz archive")
    np.savez(tmp_path / "arrays.npz", a=np.ones(3))
    assert_rejected(tmp_path / "arrays.npz", "no 'metadata' entry")
    assert_rejected(rewrite(saved, tmp_path / "other.npz", metadata={"format": "something-else"}), "format")
    with pytest.raises(FileNotFoundError):
        entrosum.load(tmp_path / "missing.npz")


def test_compressed_members_are_rejected(saved, tmp_path) -> None:
    assert_rejected(rewrite(saved, tmp_path / "compressed.npz", compressed=True), "compressed")


def test_other_format_version_is_rejected(saved, tmp_path) -> None:
    metadata = metadata_of(saved)
    metadata["format_version"] = 2
    assert_rejected(rewrite(saved, tmp_path / "v2.npz", metadata=metadata), "format version 2")


def test_other_model_is_rejected_by_class_load(saved, tmp_path) -> None:
    with pytest.raises(ValueError, match="holds a PPCA model, not a GaussianMixture"):
        entrosum.GaussianMixture.load(saved)
    with pytest.raises(ValueError, match="holds a PPCA model, not a FactorAnalysis"):
        entrosum.FactorAnalysis.load(saved)
    metadata = metadata_of(saved)
    metadata["model"] = "NoSuchModel"
    assert_rejected(rewrite(saved, tmp_path / "unknown.npz", metadata=metadata), "NoSuchModel")


def test_missing_or_misshapen_arrays_are_rejected(saved, tmp_path) -> None:
    assert_rejected(rewrite(saved, tmp_path / "missing.npz", drop=("components_",)), "components_.*missing")
    with np.load(saved) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["mean_"] = arrays["mean_"][:3]
    with open(tmp_path / "short.npz", "wb") as stream:
        np.savez(stream, **arrays)
    with pytest.raises(ValueError, match="mean_.*shape"):
        _core.SavedModel(str(tmp_path / "short.npz"))


def test_corrupt_metadata_is_rejected(saved, tmp_path) -> None:
    with np.load(saved) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["metadata"] = np.frombuffer(b'{"format": "entrosum-model", "format_version": 1, "model": "PP', np.uint8)
    with open(tmp_path / "json.npz", "wb") as stream:
        np.savez(stream, **arrays)
    assert_rejected(tmp_path / "json.npz", "JSON")


# -- the C++ JSON reader -------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [
    {"a": [1, 2.5, -0.0, 1e-300, 1.7976931348623157e308, 5e-324, 0.1, 123456789012345678],
     "b": {"c": None, "d": True, "e": False}, "": []},
    ["\u00e9\u4e2d\U0001f600 \"quoted\" back\\slash \n\t\b\f\r /", {}, [[[]]]],
    {"tol": 0.001, "reg_covar": 1e-06, "setup_time": 0.0123456789012345678},
])
def test_cpp_json_reader_matches_python(value) -> None:
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False), json.dumps(value, indent=2)):
        parsed = _core.parse_json(text)
        assert parsed == json.loads(text, parse_int=float)


@pytest.mark.parametrize("text", ['{"a": 1', '[1, 2,]', '{"a" 1}', '"\\ud800"', "01", "nul", '{"a": 1} x', "",
                                  "[" * 100 + "]" * 100, '"\\x"', '"tab\there"', "1e400", "NaN", "[1] // comment",
                                  b'"\xff"', b'"\xc3"', b"[\x00]", b"\xef\xbb\xbf[1]"])
def test_cpp_json_reader_rejects_malformed_text(text) -> None:
    # every failure is the library's FormatError (a ValueError), never an exception of nlohmann-json; invalid
    # UTF-8 and a byte order mark are refused, as the Python reader (json.loads of the decoded text) refuses them
    with pytest.raises(_core.FormatError, match=r"^metadata: .*\(corrupt JSON\)$"):
        _core.parse_json(text)


def test_cpp_json_reader_gives_the_byte_position() -> None:
    # 1-based, as nlohmann counts: the end of an 8-byte text is byte 9
    with pytest.raises(_core.FormatError, match=r"^metadata: .*unexpected end of input.* at byte 9 \(corrupt JSON\)$"):
        _core.parse_json('{"a": 1 ')
    with pytest.raises(_core.FormatError, match=r"^metadata: .*unexpected '\]'.* at byte 4 \(corrupt JSON\)$"):
        _core.parse_json("[1,]")
    # a message that quotes invalid UTF-8 stays readable (bytes outside ASCII as \xHH)
    with pytest.raises(_core.FormatError, match=r"UTF-8.*\\xFF.* at byte 2 "):
        _core.parse_json(b'"\xff"')


def test_cpp_json_reader_keeps_the_document_order_and_the_last_duplicate() -> None:
    text = '{"zeta": 1, "alpha": {"y": 2, "b": 3}, "mid": [], "alpha2": null}'
    parsed = _core.parse_json(text)
    assert list(parsed) == list(json.loads(text)) and list(parsed["alpha"]) == ["y", "b"]
    assert _core.parse_json('{"a": 1, "b": 0, "a": 2}') == json.loads('{"a": 1, "b": 0, "a": 2}') == {"a": 2, "b": 0}


def _nested(depth: int, inner: str = "1") -> str:
    """``depth`` arrays and objects, alternating, around ``inner``."""
    opening = "".join('{"k": ' if level % 2 else "[" for level in range(depth))
    closing = "".join("}" if level % 2 else "]" for level in reversed(range(depth)))
    return opening + inner + closing


def test_cpp_json_reader_limits_the_nesting_depth() -> None:
    # 64 levels are read as Python reads them; one more is refused, at the byte that opens it
    for text in (_nested(64), _nested(64, "null"), "[" * 64 + "]" * 64):
        assert _core.parse_json(text) == json.loads(text, parse_int=float)
    for text in (_nested(65), "[" * 65 + "]" * 65, "{" + '"a": ' + "[" * 64 + "]" * 64 + "}"):
        with pytest.raises(_core.FormatError, match=r"^metadata: arrays and objects nested more than 64 deep at byte"):
            _core.parse_json(text)
    with pytest.raises(_core.FormatError, match=r"more than 64 deep at byte 65 "):
        _core.parse_json("[" * 65 + "]" * 65)
    # a hostile document is refused before anything is built: no stack overflow, and fast
    for text in ("[" * 1_000_000 + "]" * 1_000_000, "[" * 1_000_000, '{"a":' * 500_000):
        with pytest.raises(_core.FormatError, match="nested more than 64 deep"):
            _core.parse_json(text)
    # brackets inside strings, escaped quotes included, are not nesting
    text = json.dumps(["[{" * 1000 + '"\\"' + "]" * 5, {"k": "\\[" * 100}])
    assert _core.parse_json(text) == json.loads(text)


def _with_metadata_bytes(source: Path, target: Path, metadata: bytes) -> Path:
    with np.load(source) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["metadata"] = np.frombuffer(metadata, dtype=np.uint8)
    with open(target, "wb") as stream:
        np.savez(stream, **arrays)
    return target


def test_metadata_errors_name_the_file(saved, tmp_path) -> None:
    metadata = metadata_of(saved)
    metadata["n_features"] = "six"
    with pytest.raises(_core.FormatError, match=r"type\.npz: metadata: n_features must be a number, got a string$"):
        _core.SavedModel(str(rewrite(saved, tmp_path / "type.npz", metadata=metadata)))
    del metadata["n_features"]
    with pytest.raises(_core.FormatError, match=r"missing\.npz: metadata: the entry 'n_features' is missing$"):
        _core.SavedModel(str(rewrite(saved, tmp_path / "missing.npz", metadata=metadata)))
    assert_rejected(rewrite(saved, tmp_path / "list.npz", metadata=[1, 2]), "format")
    # nested too deep in a key that the readers do not use: refused by the C++ reader all the same
    deep = json.dumps(metadata_of(saved))[:-1] + ', "extra": ' + _nested(80) + "}"
    path = _with_metadata_bytes(saved, tmp_path / "deep.npz", deep.encode())
    with pytest.raises(_core.FormatError, match=r"deep\.npz: metadata: arrays and objects nested more than 64 deep"):
        _core.SavedModel(str(path))
    path = _with_metadata_bytes(saved, tmp_path / "utf8.npz", b'{"format": "entrosum-model\xff"}')
    with pytest.raises(_core.FormatError, match=r"utf8\.npz: metadata: .*UTF-8.* at byte \d+ \(corrupt JSON\)$"):
        _core.SavedModel(str(path))
