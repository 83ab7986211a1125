"""Probabilistic sparse coding with a Laplace prior.

The model is x = W z + ε with Laplace sources z_h ~ Laplace(0, λ_h), ε ~ N(0, σ² I) and unit-norm atoms
(the columns of W), learned with Gaussian posteriors q_n = N(ν_n, Λ_n) through the entropy-sum ELBO
(ES-ELBO) of Velychko et al. (arXiv:2311.01888). DESIGN.md §3 has the model, the E-step, the M-step
and the annealing; every loop over data runs in C++ (``_core``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _core
from ..engine.dask import DaskBlocks
from ..engine.docs import shared_docstring
from ..engine.driver import Passes, PriorSampler, TransformMixin
from ..engine.validation import (
    MAX_INT,
    check_choice,
    check_data,
    check_int,
    check_memory,
    check_random_state,
    check_tolerance,
)
from ..monitor import ConvergenceMonitor
from .steps import SparseCodingSteps

#: The default entropy-based annealing: β_p per iteration, then 1 (Velychko et al.).
DEFAULT_ANNEALING = (10.0, 8.0, 6.0, 4.0, 2.0)


def _check_schedule(schedule: Any, name: str, *, allow_default: bool) -> list[float]:
    """Return an annealing schedule as a list of floats >= 1: None is none, 'default' the default one."""
    if schedule is None:
        return []
    if isinstance(schedule, str):
        if allow_default and schedule == "default":
            return list(DEFAULT_ANNEALING)
        raise ValueError(f"{name} must be {'default, ' if allow_default else ''}None or a sequence of numbers >= 1, "
                         f"got {schedule!r}.")
    values = np.asarray(schedule)
    if values.dtype.kind not in "biuf" or values.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of numbers >= 1 (one weight per iteration), got {schedule!r}.")
    values = values.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(values) | (values < 1))
    if bad.size:
        raise ValueError(f"{name} weights must be finite and at least 1 (they multiply an entropy term); "
                         f"got {values[bad[0]]:g} at position {bad[0]}.")
    return values.tolist()


@shared_docstring
class SparseCoding(TransformMixin, PriorSampler):
    """Probabilistic sparse coding with a Laplace prior, learned through the entropy-sum ELBO.

    The model is x = W z + ε with independent z_h ~ Laplace(0, λ_h) (scale λ_h), ε ~ N(0, σ² I), and
    atoms w_h of unit norm; the data should be centred (no mean is fitted). Each data point gets a
    Gaussian posterior q_n = N(ν_n, Λ_n). At λ and σ² optimal for q, the ELBO equals the ES-ELBO

        (1/N) Σ_n H[q_n] − Σ_h log(2 e λ_h) − (D/2) log(2 π e σ²),

    a sum of entropies; it holds after every M-step, and the monitor shows both.

    Parameters
    ----------
    n_components : int
        Number of atoms H (may exceed n_features: overcomplete dictionaries are allowed).
    posterior : {'diag', 'full'}
        Diagonal or full covariances Λ_n. Both solve one H × H system per data point and Newton step; 'full'
        costs about three times as much per step and needs more steps, and captures the posterior
        correlations between atoms (explaining away), which 'diag' misses.
    solver : {'em', 'gradient'}
        'em': variational EM. The E-step solves each data point's q_n by Newton steps with a line search
        (chunks of rows on threads, nothing per data point is kept between iterations); the M-step is
        closed form. It scales to large data, but like EM for any linear latent model it progresses very
        slowly when the noise is small next to the signal (Petersen et al. 2005). 'gradient': L-BFGS on the
        ES-ELBO over all ν_n, Λ_n and W at once, as in Velychko et al.; it keeps every q_n in memory, so it
        suits small data sets, and it does not share EM's slow progress at low noise.
    acceleration : 'auto', None or 'quasi-newton'
        For ``solver='em'``. 'auto' (the default): 'quasi-newton' when n_components < n_features and the data
        are in memory or memory-mapped; None otherwise (at or above the data's dimension, below, and on a dask
        array, whose fit runs plain EM). None: the closed-form M-step only. 'quasi-newton': after the
        annealing and 10 plain
        EM iterations, W, λ and σ² follow L-BFGS on max_q F(q, Θ), the ELBO with every q_n at its E-step
        optimum (Jamshidian & Jennrich 1997). An E-step pass gives that function and, by the envelope
        theorem, its gradient; the first direction is the EM step, and a line search whose trials are
        E-step passes keeps the ELBO increasing. Like EM it makes passes over chunks on threads and keeps
        nothing per data point, so it scales to the same data. Use it when the noise is small next to the
        signal: there EM turns the dictionary by about σ²/signal per iteration and stalls far from the
        optimum (on the 5×5 bars with noise sd 0.1 it has found no bar after 6000 iterations, while this
        recovers them all in 170 to 310 passes; on 3,000 8×8 image patches with 32 atoms it is done in 100
        passes, where EM is still rising after 120). Where the ELBO has no finite optimum to approach, as
        with n_components at or above the data's rank (centred 8×8 patches have rank 63: with 64 atoms
        σ² falls towards 0 and an atom collapses), it gains less per pass than EM (on 3,000 patches, 88.6
        nats after 228 passes against EM's 96.2 after 80). An iteration is one accepted step, which may
        take more than one pass; ``e_step_info_['passes']`` counts them. Its gain per step swings (dips to
        1e-4 nats between gains of 1e-2 on the bars), so its ``tol`` rule takes the mean change over 10 steps;
        a one-step rule at the default tol stopped four of five bars seeds with half the bars found. The monitor
        records F and S at each step's q_t and Θ_t, and, as for EM, F and S after the closed-form M-step from
        q_t (equal at β = 1); that M-step's Θ is the one returned.
        ``partial_fit`` (stepwise EM) does not use it, and a fit on a dask array refuses it.
    annealing : 'default', None or sequence of float
        Entropy-based annealing: β_p for the first iterations (the prior entropy term, and with it the
        prior's pull towards zero, is multiplied by β_p), then 1. Every value must be at least 1; None
        switches it off. 'default' is 10, 8, 6, 4, 2 for solver='em' and none for solver='gradient'.
        Iterations under β ≠ 1 record an annealed objective, not the ELBO. With β_p > 1 that objective is
        unbounded above (shrinking every code towards 0 raises it by (β_p − 1)·H·log of the shrinkage), so
        annealing is a transient device: an EM iteration takes one bounded step per weight, while for
        solver='gradient' an iteration is one L-BFGS step and a schedule should be given explicitly. As in
        Velychko et al., annealed EM iterations keep the atoms at unit norm: the M-step maximises F_β over W
        with unit columns (and λ, σ²), q as it is, so F_β rises at every iteration of one weight (rescaling q
        with W's norms, as at β = 1, would move F_β by (1 − β_p) Σ_h log ||w_h||). The scales λ shrink under
        β_p > 1 and grow back afterwards, so the stopping rules wait for 10 EM iterations after a schedule.
    observable_annealing : None or sequence of float
        β_l per iteration for the observable entropy term (then 1); values at least 1.
    tol : float or None
        Stop when the ELBO per sample changes by less than ``tol`` between (un-annealed) iterations. During
        quasi-Newton steps, whose gain swings from step to step, the rule takes the mean change over the last
        10 steps: F_t − F_{t−10} < 10 · tol.
    gap_tol : float or None
        Stop when ``|ELBO − entropy sum| / |ELBO| < gap_tol`` (with ``tol`` too, if both are set).
    max_iter : int
        Most iterations (EM iterations, or L-BFGS steps for the gradient solver), annealed ones included.
    e_step_tol : float
        Each data point's solver stops when its predicted gain (Newton decrement) is below this, in nats.
    e_step_max_iter : int
        Most Newton steps per data point and E-step.
    %(execution)s

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        The atoms Wᵀ, each of unit norm.
    scales_ : ndarray of shape (n_components,)
        The Laplace scales λ (the size of each atom's coefficients).
    noise_variance_ : float
        σ².
    monitor_ : ConvergenceMonitor
        ELBO, entropy sum, its three terms, the gap and the annealing weights per iteration.
    n_iter_, converged_
        As in scikit-learn.
    lower_bounds_ : ndarray
        The ELBO per sample per iteration; NaN for annealed iterations (their value, an annealed objective,
        is in ``monitor_.history['elbo']``).
    lower_bound_ : float
        The last entry of ``lower_bounds_``.
    e_step_info_ : dict
        Of the last E-step (for the gradient solver: of the E-step that gives its starting q): mean and
        largest number of Newton steps per data point, and the number of data points whose solver reached
        ``e_step_max_iter``; for the gradient solver also the number of objective evaluations and the
        L-BFGS status; with ``acceleration='quasi-newton'`` also ``passes``, the E-step passes over the data
        (EM iterations and line-search trials), and the L-BFGS status.
    """

    _numerical_advice = "Scale or centre the data, remove constant features, or choose fewer components."

    # Parameters of this model and fitted attributes, declared for type checkers (set by ``__init__`` and by fit /
    # partial_fit).
    posterior: str
    solver: str
    acceleration: str | None
    annealing: Any
    observable_annealing: Any
    e_step_tol: float
    e_step_max_iter: int
    components_: np.ndarray
    scales_: np.ndarray
    noise_variance_: float

    def __init__(self, n_components: int = 8, *, posterior: str = "diag", solver: str = "em",
                 acceleration: str | None = "auto", annealing: Any = "default", observable_annealing: Any = None,
                 tol: float | None = 1e-4, gap_tol: float | None = None, max_iter: int = 1000,
                 e_step_tol: float = 1e-10, e_step_max_iter: int = 100, random_state: Any = None,
                 n_jobs: int | None = None, chunk_size: int | None = None, verbose: int = 0,
                 learning_offset: float = 10.0, learning_decay: float = 0.7) -> None:
        self._store_params(locals())

    _fitted_names = ("components_", "scales_", "noise_variance_", "e_step_info_")

    def _check_family_params(self, n_features: int) -> None:
        """Check ``components_`` (H, D) with H >= 1, positive ``scales_`` (H,) and a positive noise variance."""
        components = self._fitted_array("components_", ndim=2)
        if components.shape[0] < 1:
            raise ValueError(f"SparseCoding.components_ has shape {components.shape}; a fitted model has at least "
                             "one atom. Refit the model.")
        self._fitted_array("components_", (components.shape[0], n_features), why="n_features_in_ columns")
        self._fitted_array("scales_", (components.shape[0],), why="one scale per atom in components_", positive=True)
        self._fitted_array("noise_variance_", (), positive=True)

    # -- settings ------------------------------------------------------------------------------------
    def _check_settings(self, X: Any = None) -> dict:
        solver = check_choice(self.solver, "solver", ("em", "gradient"))
        prior_annealing = _check_schedule(self.annealing, "annealing", allow_default=True)
        if isinstance(self.annealing, str) and solver == "gradient":  # 'default': none for the joint solver
            prior_annealing = []
        acceleration = check_choice(self.acceleration, "acceleration", ("auto", None, "quasi-newton"))
        if acceleration not in ("auto", None) and solver != "em":
            raise ValueError(f"acceleration={acceleration!r} accelerates solver='em'; use acceleration=None with "
                             f"solver={solver!r}.")
        n_components = check_int(self.n_components, "n_components", minimum=1)
        if acceleration == "auto":
            # quasi-Newton steps where the ELBO has an optimum to approach (fewer atoms than features) and the
            # data are not a dask array (whose fit runs plain EM); see the parameter's documentation
            undercomplete = X is not None and n_components < X.shape[1]
            acceleration = ("quasi-newton" if solver == "em" and undercomplete and not isinstance(X, DaskBlocks)
                            else None)
        if X is not None:
            D = X.shape[1]
            check_memory(f"SparseCoding(n_components={n_components}) on {D} features",
                         48.0 * n_components * (D + n_components), "its atoms and the statistics of its posteriors",
                         "Choose fewer components.")
        settings = {
            "n_components": n_components,
            "posterior": check_choice(self.posterior, "posterior", ("diag", "full")),
            "solver": solver,
            "acceleration": acceleration,
            "prior_annealing": prior_annealing,
            "observable_annealing": _check_schedule(self.observable_annealing, "observable_annealing",
                                                    allow_default=False),
            "e_step_tol": check_tolerance(self.e_step_tol, "e_step_tol", allow_none=False),
            "e_step_max_iter": check_int(self.e_step_max_iter, "e_step_max_iter", minimum=1, maximum=MAX_INT),
        }
        return settings

    # -- fitting -------------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> SparseCoding:
        """Fit the atoms, scales and noise variance to ``X`` of shape (n_samples, n_features).

        A failed fit raises and leaves a previously fitted model unchanged. A ``dask.array.Array`` is fitted by
        variational EM on the current ``distributed`` client, the E-steps on the workers (``entrosum.engine.dask``).
        """
        return self._fit(X)

    def _fit_start(self, X: Any, weights: np.ndarray, settings: Any, rng: np.random.Generator,
                   monitor: ConvergenceMonitor, passes: Passes) -> dict:
        initial = rng.standard_normal((X.shape[1], settings["n_components"]))
        if isinstance(X, DaskBlocks):
            from .dask_fit import sparse_coding_fit

            if settings["acceleration"] is not None:
                raise ValueError("acceleration='quasi-newton' is not available on a dask array yet; fit with "
                                 "acceleration=None.")
            annealed = settings["prior_annealing"] or settings["observable_annealing"]
            stop = self._stop_options(warmup_iterations=_core.SPARSE_CODING_ANNEALING_WARMUP if annealed else 0)
            return sparse_coding_fit(X, initial, settings, stop, monitor)
        return _core.fit_sparse_coding(
            X, initial, np.empty(0), -1.0, settings["posterior"], settings["solver"], settings["prior_annealing"],
            settings["observable_annealing"], settings["e_step_tol"], settings["e_step_max_iter"],
            self._stop_options(), passes.n_threads, passes.chunk_size,
            monitor._on_iteration if self.verbose else None, settings["acceleration"] or "none")

    def _params_attributes(self, result: dict, dtype: np.dtype) -> dict[str, Any]:
        e_step_info = {key: result[key] for key in ("mean_solver_steps", "max_solver_steps", "unconverged")}
        # L-BFGS ran for the joint solver, or for EM's quasi-Newton acceleration (not in partial_fit or on Dask)
        if "evaluations" in result and (self.solver == "gradient" or self.acceleration is not None):
            key = "evaluations" if self.solver == "gradient" else "passes"
            e_step_info.update({key: result["evaluations"], "lbfgs_status": result["lbfgs_status"]})
        return {"components_": np.ascontiguousarray(result["components"].T.astype(dtype)),
                "scales_": result["scales"].astype(dtype), "noise_variance_": dtype.type(result["noise_variance"]),
                "e_step_info_": e_step_info}

    # -- partial_fit (stepwise EM, engine.online) -----------------------------------------------------------------
    def _online_steps(self) -> SparseCodingSteps:
        """Return steps without annealing: stepwise EM blends many chunks' statistics, of one objective."""
        settings = self._check_settings()
        if settings["solver"] != "em":
            raise ValueError("SparseCoding.partial_fit runs variational EM; set solver='em'.")
        return SparseCodingSteps(settings["posterior"], settings["e_step_tol"], settings["e_step_max_iter"])

    def _online_start(self, X: np.ndarray, weights: np.ndarray | None, passes: Passes) -> tuple[Any, dict]:
        steps = self._online_steps()
        rng = check_random_state(self.random_state)
        initial = rng.standard_normal((X.shape[1], check_int(self.n_components, "n_components", minimum=1)))
        power = _core.sum_of_squares(X, passes.n_threads, passes.chunk_size) / X.size
        params, steps = steps.start(initial, X.shape[1], power)
        return steps, params

    def _online_resume(self, X: np.ndarray) -> tuple[Any, dict]:
        components, scales, noise = self._params64()
        # the noise floor of a fit on data of this chunk's power
        passes = self._passes()
        power = _core.sum_of_squares(X, passes.n_threads, passes.chunk_size) / X.size
        _, steps = self._online_steps().start(components, X.shape[1], power)
        return steps, {"components": components, "scales": scales, "noise_variance": noise, "prior_beta": 1.0,
                       "observable_beta": 1.0, "step": 0}

    def _online_result(self, params: dict, statistics: Any) -> dict:
        return {**params, **statistics.diagnostics}

    # -- inference -----------------------------------------------------------------------------------
    def _params64(self) -> tuple[np.ndarray, np.ndarray, float]:
        """(W (D, H), λ (H,), σ²) in float64 for the C++ calls."""
        self._check_fitted_params()
        return (self.components_.T.astype(np.float64), self.scales_.astype(np.float64), float(self.noise_variance_))

    def _infer(self, X: Any, with_spread: bool) -> dict:
        X, passes = self._inference_data(X)
        posterior = check_choice(self.posterior, "posterior", ("diag", "full"))
        return _core.sparse_coding_posterior(
            X, *self._params64(), posterior, check_tolerance(self.e_step_tol, "e_step_tol", allow_none=False),
            check_int(self.e_step_max_iter, "e_step_max_iter", minimum=1, maximum=MAX_INT), with_spread,
            passes.n_threads, passes.chunk_size)

    def transform(self, X: Any) -> np.ndarray:
        """Return the posterior means E_q[z], inferred under the fitted W, λ, σ².

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples with the fitted model's features.

        Returns
        -------
        ndarray of shape (n_samples, n_components)
            In the dtype of ``X``.
        """
        return self._infer(X, with_spread=False)["means"]

    def predict_posterior(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Infer the Gaussian posterior q_n = N(ν_n, Λ_n) of every sample under the fitted model.

        (Named like ``predict_proba`` of the mixtures: ``posterior`` is the parameter choosing the family.)

        Returns
        -------
        means : ndarray of shape (n_samples, n_components)
        variances or covariances : ndarray of shape (n_samples, n_components) for ``posterior='diag'``
            (the diagonal of Λ_n), or (n_samples, n_components, n_components) for ``posterior='full'``.
        """
        if self.posterior == "full" and hasattr(X, "shape") and len(X.shape) == 2:
            H = self.components_.shape[0]
            check_memory(f"SparseCoding(n_components={H}, posterior='full').predict_posterior on {X.shape[0]} samples",
                         8.0 * X.shape[0] * H * H, "a covariance matrix per sample", "Pass fewer samples at a time.")
        result = self._infer(X, with_spread=True)
        return result["means"], result["spread"]

    def inverse_transform(self, Z: Any) -> np.ndarray:
        """Return W z for codes ``Z``: the reconstruction from posterior means.

        Parameters
        ----------
        Z : array-like of shape (n_samples, n_components)
            Codes, e.g. from :meth:`transform`.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
        """
        self._check_fitted()
        Z = check_data(Z, name="Z", n_features=self.components_.shape[0])
        return (Z @ self.components_.astype(Z.dtype)).astype(self.components_.dtype)

    def score(self, X: Any, y: Any = None) -> float:
        """Return the ES-ELBO per sample of ``X``, with q inferred under the fitted W, λ, σ².

        The value is (1/N) Σ H[q_n] − Σ_h log(2 e λ*_h) − (D/2) log(2 π e σ²*) with λ*, σ²* optimal for that q
        and W (the ELBO maximised over λ and σ² on these data; a lower bound of the mean log-likelihood at those
        λ, σ²).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples with the fitted model's features.
        y : ignored

        Returns
        -------
        float
        """
        return float(self._infer(X, with_spread=False)["es_elbo"]["elbo"])

    def _draw(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        components, scales, noise = self._params64()
        latent = rng.laplace(0.0, scales, size=(n_samples, scales.shape[0]))
        noise_draws = rng.standard_normal((n_samples, components.shape[0])) * np.sqrt(noise)
        return latent @ components.T + noise_draws
