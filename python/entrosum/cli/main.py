"""The ``entrosum`` command line.

It fits a model to a data file, scores, predicts or transforms data with a saved model, describes a saved model,
or runs the demo.

    entrosum fit gmm data.npy --n-components 8 --out model.npz
    entrosum score model.npz data.npy
    entrosum predict model.npz data.npy --out labels.npy
    entrosum transform model.npz data.npy --out codes.npy
    entrosum info model.npz
    entrosum demo

Errors the user can fix (a missing or unreadable file, a wrong shape, an unknown model, a bad option) are
one line on stderr and exit code 1 (2 for command-line syntax), never a traceback; a command prints its results
only once all its work has succeeded, so nothing reaches stdout before an error.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..io import registry
from ..io.model_io import model_dtype

#: Exit codes.
OK, FAILED, USAGE, INTERRUPTED = 0, 1, 2, 130


class CommandError(Exception):
    """A problem to report on stderr in one line (no traceback)."""


# -- data files ----------------------------------------------------------------------------------------
#: The arrays of a sparse matrix written by scipy.sparse.save_npz.
SPARSE_NPZ_ARRAYS = frozenset({"format", "shape", "data", "indices", "indptr"})


def load_data(path: str, key: str | None = None) -> Any:
    """Read a 2-D array from a data file.

    A .npy file is memory-mapped (read chunk by chunk by the fit), a .npz archive gives the array ``key`` (or
    its only array) or, when written by ``scipy.sparse.save_npz``, its sparse matrix (for the models that take
    sparse input), a .csv file holds comma-separated numbers with an optional header line.
    """
    file = Path(path)
    if not file.is_file():
        raise CommandError(f"no data file at {path!r}")
    suffix = file.suffix.lower()
    try:
        if suffix == ".npy":
            data = np.load(file, mmap_mode="r", allow_pickle=False)
        elif suffix == ".npz":
            with np.load(file, allow_pickle=False) as archive:
                names = archive.files
                if key is None and SPARSE_NPZ_ARRAYS <= set(names):
                    return _load_sparse(file)
                if key is None and len(names) != 1:
                    raise CommandError(f"{path} holds the arrays {', '.join(names) or '(none)'}; choose one with --key")
                name = key if key is not None else names[0]
                if name not in names:
                    raise CommandError(f"{path} has no array {name!r}; it holds {', '.join(names)}")
                data = archive[name]
        elif suffix == ".csv":
            data = _load_csv(file)
        else:
            raise CommandError(f"{path}: unsupported data file type {suffix or '(none)'!r}; use .npy, .npz or .csv")
    except CommandError:
        raise
    except (ValueError, OSError, EOFError) as error:
        raise CommandError(f"cannot read {path}: {error}") from error
    if data.ndim != 2:
        raise CommandError(f"{path} holds an array of shape {data.shape}; the data must be 2-D "
                           "(n_samples, n_features)")
    if data.dtype.kind not in "biuf":
        raise CommandError(f"{path} holds {data.dtype} values; the data must be numbers")
    return data


def _load_sparse(file: Path) -> Any:
    """Read a sparse matrix written by ``scipy.sparse.save_npz`` (scipy, which wrote it, reads it)."""
    try:
        from scipy import sparse  # type: ignore[import-untyped]
    except ImportError as error:
        raise CommandError(f"{file} holds a scipy.sparse matrix; install scipy to read it") from error
    matrix = sparse.load_npz(file)
    if matrix.ndim != 2:
        raise CommandError(f"{file} holds a sparse array of shape {matrix.shape}; the data must be 2-D")
    return matrix


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _load_csv(file: Path) -> np.ndarray:
    """Read comma-separated numbers; a first line with no number in any field is a header of column names.

    A first line with numbers in some fields and not in others is an error: a value that is not a number, not a
    header.
    """
    with open(file) as stream:
        first = stream.readline()
    values = [value.strip() for value in first.split(",")]
    numbers = [_is_number(value) for value in values]
    if any(numbers) and not all(numbers):
        column = numbers.index(False) + 1
        raise CommandError(f"{file}: line 1, column {column} holds {values[column - 1]!r}, which is not a number "
                           "(a header line holds only column names)")
    header = 0 if all(numbers) else 1
    return np.loadtxt(file, delimiter=",", skiprows=header, ndmin=2, dtype=np.float64)


# -- commands ------------------------------------------------------------------------------------------
def _tolerance(text: str) -> float | None:
    if text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected a number or 'none', got {text!r}") from error


def _n_trials(text: str) -> int | list[int]:
    """One whole number of trials, or one per column separated by commas."""
    try:
        values = [int(value) for value in text.split(",")]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}") from error
    return values[0] if len(values) == 1 else values


def _estimator(args: argparse.Namespace) -> Any:
    family = registry.by_name(args.model)
    if family is None:
        known = ", ".join(f.name for f in registry.families())
        raise CommandError(f"unknown model {args.model!r}; choose one of {known}")
    cls = family.estimator_class()
    if cls is None:
        raise CommandError(f"model {args.model!r} ({family.class_name}) is not available in this version of entrosum")
    if args.covariance_type is not None and "covariance_type" not in family.options:
        raise CommandError(f"--covariance-type applies to gmm, not to {args.model}")
    if args.n_trials is not None and "n_trials" not in family.options:
        raise CommandError(f"--n-trials applies to binomial and mixed, not to {args.model}")
    if args.families is not None and "families" not in family.options:
        raise CommandError(f"--families applies to mixed, not to {args.model}")
    if args.n_levels is not None and "n_levels" not in family.options:
        raise CommandError(f"--n-levels applies to categorical and mixed, not to {args.model}")
    if args.quiet and args.verbose:
        raise CommandError("--quiet and --verbose contradict each other; choose one")
    params: dict[str, Any] = {"random_state": args.seed, "n_jobs": args.jobs, "chunk_size": args.chunk_size,
                              "verbose": 0 if args.quiet else 2 if args.verbose else 1}
    for name in ("n_components", "max_iter", "covariance_type", "n_trials", "families", "n_levels"):
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    for name in ("tol", "gap_tol"):  # False: not given (None is 'none', the rule switched off)
        if getattr(args, name) is not False:
            params[name] = getattr(args, name)
    return cls(**params)


def _summary(model: Any) -> dict[str, Any]:
    """Collect what ``info`` shows: the model, its sizes, how the fit ended and the final ELBO and entropy terms."""
    monitor = model.monitor_
    params = model.get_params()
    summary: dict[str, Any] = {
        "model": type(model).__name__,
        "n_features": int(model.n_features_in_),
        "n_components": params.get("n_components"),
        "dtype": model_dtype(model),
    }
    if "covariance_type" in params:
        summary["covariance_type"] = params["covariance_type"]
    summary.update(iterations=monitor.n_iter, converged=bool(monitor.converged), stop_reason=monitor.stop_reason)
    for field in ("elbo", "entropy_sum", "posterior_entropy", "prior_entropy", "observable_entropy", "data_term",
                  "gap"):
        summary[field] = float(monitor.history[field][-1]) if monitor.n_iter else math.nan
    return summary


def _print_summary(summary: dict[str, Any], stream: Any = None) -> None:
    labels = {"elbo": "ELBO F", "entropy_sum": "entropy sum S", "posterior_entropy": "  posterior entropy",
              "prior_entropy": "  - prior entropy", "observable_entropy": "  - observable entropy",
              "data_term": "  + data term", "gap": "gap F - S"}
    for name, value in summary.items():
        if name == "data_term" and value == 0.0:
            continue
        text = f"{value:.10g}" if isinstance(value, float) else str(value)
        print(f"{labels.get(name, name.replace('_', ' ')) + ':':24s}{text}", file=stream or sys.stdout)


def command_fit(args: argparse.Namespace) -> int:
    """Run ``entrosum fit``: fit a model to a data file, save it with ``--out``, print its summary.

    Without ``--out`` the model is not saved, and stderr says so.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (see :func:`build_parser`).

    Returns
    -------
    int
        The exit code, 0.
    """
    model = _estimator(args)
    data = load_data(args.data, args.key)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(data)
    for warning in caught:
        print(f"entrosum: warning: {warning.message}", file=sys.stderr)
    if args.out:
        model.save(args.out)  # before anything is printed: a failed save prints only its error
    _print_summary(_summary(model))
    if args.out:
        print(f"{'saved to:':24s}{args.out}")
    else:
        print("entrosum: the model was not saved; add --out FILE.npz to keep it", file=sys.stderr)
    return OK


def _load_model(path: str) -> Any:
    from ..io.model_io import load

    try:
        return load(path)
    except FileNotFoundError as error:
        raise CommandError(str(error)) from error


def command_score(args: argparse.Namespace) -> int:
    """Run ``entrosum score``: the mean log-likelihood of data under a saved model.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (see :func:`build_parser`).

    Returns
    -------
    int
        The exit code, 0.

    Raises
    ------
    CommandError
        When ``--out`` asks for per-sample scores of a model that has none (sparse coding).
    """
    model = _load_model(args.model_file)
    data = load_data(args.data, args.key)
    if args.jobs is not None:
        model.set_params(n_jobs=args.jobs)
    lines = [f"{'model:':24s}{type(model).__name__}", f"{'n samples:':24s}{data.shape[0]}"]
    if not hasattr(model, "score_samples"):  # sparse coding: no closed-form likelihood, its score is the ES-ELBO
        if args.out:
            raise CommandError(f"{type(model).__name__} has no per-sample log-likelihood; drop --out")
        # binary latents: the free energy after the data's own E-step (the log-likelihood for exact posteriors)
        label = "free energy per sample:" if hasattr(model, "prior_") else "ES-ELBO per sample:"
        lines.append(f"{label:24s}{model.score(data):.10g}")
    else:
        scores = model.score_samples(data)
        lines.append(f"{'mean log-likelihood:':24s}{float(np.mean(scores)):.10g}")
        if args.out:
            _save_array(args.out, scores)
            lines.append(f"{'per-sample scores:':24s}{args.out}")
    print("\n".join(lines))
    return OK


def _save_array(path: str, values: np.ndarray) -> None:
    """Write ``values`` to a ``.npy`` file, or a ``.csv`` file of comma-separated numbers."""
    if path.lower().endswith(".csv"):
        np.savetxt(path, values.reshape(values.shape[0], -1), delimiter=",", fmt="%.17g")
    elif path.lower().endswith(".npy"):
        np.save(path, values)
    else:
        raise CommandError(f"{path}: --out must name a .npy or .csv file")


def _apply(args: argparse.Namespace, method: str, what: str) -> int:
    """Run a saved model's ``method`` (predict, transform) on a data file; write the result or print it as CSV."""
    model = _load_model(args.model_file)
    if not hasattr(model, method):
        raise CommandError(f"{type(model).__name__} has no {method} ({what}); "
                           f"{'use transform' if method == 'predict' else 'use predict'}")
    data = load_data(args.data, args.key)
    if args.jobs is not None:
        model.set_params(n_jobs=args.jobs)
    result = np.asarray(getattr(model, method)(data))
    if args.out:
        _save_array(args.out, result)
        print(f"{'model:':24s}{type(model).__name__}\n{'n samples:':24s}{data.shape[0]}\n{what + ':':24s}{args.out}")
    else:
        np.savetxt(sys.stdout, result.reshape(result.shape[0], -1), delimiter=",",
                   fmt="%d" if result.dtype.kind in "iu" else "%.17g")
    return OK


def command_predict(args: argparse.Namespace) -> int:
    """Run ``entrosum predict``: the most probable component of each row under a saved mixture.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (see :func:`build_parser`).

    Returns
    -------
    int
        The exit code, 0.
    """
    return _apply(args, "predict", "labels")


def command_transform(args: argparse.Namespace) -> int:
    """Run ``entrosum transform``: the posterior means (codes) of each row under a saved PPCA, FA or sparse coding.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (see :func:`build_parser`).

    Returns
    -------
    int
        The exit code, 0.
    """
    return _apply(args, "transform", "codes")


def command_info(args: argparse.Namespace) -> int:
    """Run ``entrosum info``: describe a saved model, as text or with ``--json`` as JSON.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (see :func:`build_parser`).

    Returns
    -------
    int
        The exit code, 0.
    """
    model = _load_model(args.model_file)
    summary = _summary(model)
    if args.json:
        print(json.dumps({key: (None if isinstance(v, float) and not math.isfinite(v) else v)
                          for key, v in summary.items()}))
    else:
        _print_summary(summary)
    return OK


def command_demo(args: argparse.Namespace) -> int:
    """Run ``entrosum demo``: fit every model on generated data (see :mod:`entrosum.demo`).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (see :func:`build_parser`).

    Returns
    -------
    int
        The exit code: 0 when every model's ELBO and entropy sum agree, else 1.
    """
    from .demo import run

    rows = run(print_reports=args.report, plot=args.plot)
    return OK if all(row["agree"] for row in rows) else FAILED


def build_parser(prog: str = "entrosum") -> argparse.ArgumentParser:
    """Build the parser of the command line and its sub-commands ``fit``, ``score``, ``info`` and ``demo``.

    Parameters
    ----------
    prog : str
        The program name shown in usage and error messages.

    Returns
    -------
    argparse.ArgumentParser
        The parser; each sub-command sets ``run`` to the function that carries it out.
    """
    parser = argparse.ArgumentParser(prog=prog, description="Fit latent-variable models by EM and read their ELBO "
                                                            "as a sum of entropies.")
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"entrosum {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    models = ", ".join(f"{f.name} ({f.summary})" for f in registry.families())
    fit = commands.add_parser("fit", help="fit a model to a data file", description=f"MODEL is one of: {models}.")
    fit.add_argument("model", metavar="MODEL", help="the model family, e.g. gmm")
    fit.add_argument("data", metavar="DATA", help="a .npy (read memory-mapped), .npz or .csv file, (n_samples, "
                                                  "n_features)")
    fit.add_argument("--key", help="the array to use from a .npz file with several")
    fit.add_argument("--n-components", type=int, help="number of components (latent dimension for ppca and fa)")
    fit.add_argument("--covariance-type", choices=("full", "tied", "diag", "spherical", "tied_diag", "tied_spherical"),
                     help="gmm only")
    fit.add_argument("--n-trials", type=_n_trials,
                     help="binomial and mixed: the trials of every binomial column, or one per column (e.g. 16 or 4,8)")
    fit.add_argument("--families",
                     help="mixed only: each column's family, e.g. 'gaussian=0,1;poisson=2;categorical=3'")
    fit.add_argument("--n-levels", type=_n_trials,
                     help="categorical and mixed: the levels of every categorical column, or one per column (default: "
                          "the largest code plus 1)")
    fit.add_argument("--max-iter", type=int, help="most EM iterations")
    fit.add_argument("--tol", type=_tolerance, default=False,
                     help="stop when the ELBO per sample changes by less ('none' to switch off)")
    fit.add_argument("--gap-tol", type=_tolerance, default=False,
                     help="stop when |F - S| / |F| is below this ('none', the default, to switch off; with --tol "
                          "both must hold)")
    fit.add_argument("--seed", type=int, help="random seed of the initialisation")
    fit.add_argument("--chunk-size", type=int, help="rows per chunk of each pass over the data")
    fit.add_argument("--jobs", type=int, help="threads (default: all cores)")
    fit.add_argument("--out", help="save the fitted model to this file (.npz); without it the model is not saved")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    fit.add_argument("--verbose", action="store_true", help="a line per iteration (F, S, gap, change, time) instead "
                                                            "of the progress bar")
    fit.set_defaults(run=command_fit)

    score = commands.add_parser("score", help="mean log-likelihood of data under a saved model (the ES-ELBO for "
                                              "sparse coding)")
    score.add_argument("model_file", metavar="MODEL_FILE")
    score.add_argument("data", metavar="DATA")
    score.add_argument("--key", help="the array to use from a .npz file with several")
    score.add_argument("--jobs", type=int, help="threads (default: the model's setting)")
    score.add_argument("--out", help="save the per-sample log-likelihoods to this .npy file")
    score.set_defaults(run=command_score)

    for name, run, text in (("predict", command_predict, "the most probable component of each row (mixtures)"),
                            ("transform", command_transform, "the posterior means of each row (ppca, fa, sparse)")):
        command = commands.add_parser(name, help=text)
        command.add_argument("model_file", metavar="MODEL_FILE")
        command.add_argument("data", metavar="DATA")
        command.add_argument("--key", help="the array to use from a .npz file with several")
        command.add_argument("--jobs", type=int, help="threads (default: the model's setting)")
        command.add_argument("--out", help="write the result to this .npy or .csv file (default: CSV on stdout)")
        command.set_defaults(run=run)

    info = commands.add_parser("info", help="describe a saved model")
    info.add_argument("model_file", metavar="MODEL_FILE")
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    info.set_defaults(run=command_info)

    demo = commands.add_parser("demo", help="fit every model on generated data and compare ELBO and entropy sum")
    demo.add_argument("--report", action="store_true", help="also print each model's monitor report")
    demo.add_argument("--plot", metavar="FILE", help="save sparse coding's atoms and monitor plot to FILE (matplotlib)")
    demo.set_defaults(run=command_demo)
    return parser


def main(argv: list[str] | None = None, prog: str = "entrosum") -> int:
    """Run the command line; errors the user can fix are one line on stderr, never a traceback.

    Parameters
    ----------
    argv : list of str, optional
        The arguments without the program name; ``sys.argv[1:]`` when omitted.
    prog : str
        The program name for messages (``python -m entrosum`` when run as a module).

    Returns
    -------
    int
        The exit code: 0 on success, 1 on an error, 2 for command-line syntax (argparse exits itself),
        130 when interrupted.

    Examples
    --------
    >>> from entrosum.cli import main
    >>> main(["info", "model.npz"])  # doctest: +SKIP
    """
    args = build_parser(prog).parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except (CommandError, ValueError, TypeError, OSError) as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return FAILED


def console() -> None:
    """Entry point of the ``entrosum`` console script."""
    sys.exit(main())
