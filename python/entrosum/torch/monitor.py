"""A PyTorch training monitor for Gaussian VAEs, and differentiable ELBO and entropy-based objectives.

:class:`EntropySumMonitor` takes, per batch, what a VAE's training step computes anyway (the encoder's means and
log-variances, the decoder's means at the sampled z, its log-variances, the data), copies them out of the graph,
and adds them up in C++ (``entrosum.vae.EntropySumAccumulator``). At the end of each epoch it records the ELBO F,
the entropy sum S, its three terms and the gap in a :class:`entrosum.ConvergenceMonitor`, the same object every
entrosum model fills, with its report, plot and stopping rules. Two lines in a training loop::

    monitor.update(x, mean, log_variance, decoded, log_sigma2)   # after each batch's forward pass
    if monitor.end_epoch(): break                                 # after each epoch: stop on tol / gap_tol

torch is imported on first use; ``pip install "entrosum[torch]"`` installs it.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from .. import _core
from ..engine.validation import check_int, check_tolerance
from ..monitor import FIELDS, ConvergenceMonitor
from ..vae.entropy_sum import EntropySumAccumulator

if TYPE_CHECKING:
    import torch

#: What the ImportError says when torch is missing.
INSTALL_HINT = ("entrosum.torch needs PyTorch: pip install 'entrosum[torch]' (or install torch as pytorch.org says "
                "for your platform, e.g. its CPU build).")

#: Per-epoch values the monitor keeps beside the ConvergenceMonitor's fields (``EntropySumMonitor.details``).
DETAILS = ("reconstruction", "kl_divergence", "optimal_noise_variance", "optimal_elbo", "n_points")


def import_torch() -> Any:
    """Return the torch module, or raise an ImportError that says how to install it."""
    try:
        import torch
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return torch


def to_numpy(value: Any) -> Any:
    """Return a tensor's values as a numpy array outside the autograd graph (float32 or float64); others as given.

    The tensor is detached and, if needed, copied to the CPU; half and bfloat16 tensors become float32.
    """
    torch = import_torch()
    if value is None or not isinstance(value, torch.Tensor):
        return value
    tensor = value.detach()
    if tensor.dtype not in (torch.float32, torch.float64):
        tensor = tensor.to(torch.float32)
    return tensor.cpu().numpy()


class EntropySumMonitor:
    """Per-epoch ELBO, three-entropy sum and gap of a Gaussian VAE trained with PyTorch.

    Call :meth:`update` once per training batch with the tensors of its forward pass, and :meth:`end_epoch` after
    each epoch. The values of an epoch are sums over all its data points, so they do not depend on the batch size;
    each batch counts with the parameters in force when its forward pass ran. The tensors are detached and copied:
    nothing is kept between calls and no gradient flows through the monitor.

    Parameters
    ----------
    tol : float or None
        ``end_epoch`` returns True once the epoch's ELBO per sample changed by less than ``tol``.
    gap_tol : float or None
        ``end_epoch`` returns True once ``|F − S| / |F| < gap_tol`` (with both rules set, both must hold).
    max_epochs : int
        ``end_epoch`` returns True at this epoch (not converged).
    verbose : int
        1: a progress bar per epoch on stderr; 2: a line per epoch on stdout.
    model : str
        Name shown in reports and plots.
    stream : file-like, optional
        Where the progress goes instead.

    Attributes
    ----------
    monitor : ConvergenceMonitor
        One record per epoch: ``elbo``, ``entropy_sum``, ``posterior_entropy``, ``prior_entropy``,
        ``observable_entropy``, ``gap``, ``change``, ``time`` (the epoch's wall time), as for every entrosum model;
        its ``stop_reason`` is 'running' until a rule is met.
    details : dict of numpy arrays
        Per epoch: ``reconstruction`` and ``kl_divergence`` (F's parts), ``optimal_noise_variance`` (σ²* of the epoch
        for a scalar decoder variance, else NaN), ``optimal_elbo`` (F with σ²* substituted, else NaN), ``n_points``.

    Examples
    --------
    >>> monitor = EntropySumMonitor(gap_tol=1e-2)  # doctest: +SKIP
    >>> for epoch in range(100):  # doctest: +SKIP
    ...     for x in loader:
    ...         mean, log_variance = encoder(x)
    ...         z = mean + torch.randn_like(mean) * (0.5 * log_variance).exp()
    ...         decoded = decoder(z)
    ...         loss = -entrosum.torch.elbo(x, mean, log_variance, decoded, log_sigma2)
    ...         optimizer.zero_grad(); loss.backward(); optimizer.step()
    ...         monitor.update(x, mean, log_variance, decoded, log_sigma2)
    ...     if monitor.end_epoch():
    ...         break
    >>> print(monitor.report()); monitor.plot()  # doctest: +SKIP
    """

    def __init__(self, *, tol: float | None = None, gap_tol: float | None = None, max_epochs: int = 1000,
                 verbose: int = 0, model: str = "VAE", stream: TextIO | None = None) -> None:
        import_torch()  # say how to install torch now, not at the first batch
        stop = _core.StopOptions(tol=check_tolerance(tol, "tol", allow_none=True),
                                 gap_tol=check_tolerance(gap_tol, "gap_tol", allow_none=True),
                                 max_iter=check_int(max_epochs, "max_epochs", minimum=1))
        self.monitor = ConvergenceMonitor(tol=tol, gap_tol=gap_tol, max_iter=max_epochs, verbose=verbose, model=model,
                                          stream=stream)
        self.monitor.history = {name: np.empty(0, dtype=np.int64 if name == "iteration" else np.float64)
                                for name in FIELDS}
        self._rule = _core.Monitor(stop)
        self._epoch = EntropySumAccumulator()
        self._epoch_started: float | None = None
        self.details: dict[str, np.ndarray] = {name: np.empty(0) for name in DETAILS}

    # -- during training ---------------------------------------------------------------------------
    def update(self, x: Any, encoder_mean: Any, encoder_log_variance: Any, decoder_mean: Any,
               decoder_log_variance: Any = None, prior_log_variance: Any = None) -> None:
        """Add one batch's forward pass to the current epoch.

        Parameters
        ----------
        x : tensor of shape (n, D)
            The batch (flatten images first).
        encoder_mean, encoder_log_variance : tensors of shape (n, H)
            ν_n and log τ_n² of q_n = N(ν_n, diag τ_n²).
        decoder_mean : tensor of shape (n, D) or (S, n, D)
            μ(z) at the samples z ~ q_n the step drew (S per point, sample-major).
        decoder_log_variance : None, tensor of one value, of shape (D,), or of decoder_mean's shape
            log σ² of the decoder: None for σ² = 1, one learned scalar (VAE-1), one per feature, or one per output
            for variances that depend on z (VAE-3).
        prior_log_variance : None or tensor of shape (H,)
            log α² of a learned prior N(0, diag α²) (VAE-2); None for N(0, I).

        Raises
        ------
        ValueError
            For shapes that do not fit together (naming the argument and the shape expected), NaN or infinity,
            or a batch of another form than the epoch's earlier batches.
        """
        if self._epoch_started is None:
            self._epoch_started = time.perf_counter()
        self._epoch.add(to_numpy(x), to_numpy(encoder_mean), to_numpy(encoder_log_variance), to_numpy(decoder_mean),
                        to_numpy(decoder_log_variance), to_numpy(prior_log_variance))

    def end_epoch(self) -> bool:
        """Record the epoch's ELBO, entropy sum, its terms and the gap; start a new epoch.

        Returns
        -------
        bool
            True once the stopping rule (``tol``, ``gap_tol``, ``max_epochs``) is met: stop training.

        Raises
        ------
        ValueError
            When no batch was added since the last call.
        """
        if self._epoch.count == 0:
            raise ValueError("no batch was added in this epoch; call update() for each batch before end_epoch().")
        started = self._epoch_started if self._epoch_started is not None else time.perf_counter()
        terms = self._epoch.terms()
        done = self._rule.record(elbo=terms["elbo"], posterior_entropy=terms["posterior_entropy"],
                                 prior_entropy=terms["prior_entropy"], observable_entropy=terms["observable_entropy"],
                                 seconds=time.perf_counter() - started)
        scalar = self._epoch.decoder_variance == "scalar"
        optimal_noise = self._epoch.optimal_noise_variance() if scalar else math.nan
        optimal_elbo = self._epoch.optimal_terms()["elbo"] if scalar else math.nan
        values = {"reconstruction": terms["reconstruction"], "kl_divergence": terms["kl_divergence"],
                  "optimal_noise_variance": optimal_noise, "optimal_elbo": optimal_elbo, "n_points": self._epoch.count}
        self.details = {name: np.append(self.details[name], values[name]) for name in DETAILS}
        monitor = self.monitor
        monitor.history = {name: np.asarray(values) for name, values in self._rule.history.items()}
        monitor.stop_reason = self._rule.stop_reason
        monitor.converged = bool(self._rule.converged)
        if monitor.verbose:
            monitor._on_iteration(self._rule.last)
            if done:
                monitor._close_progress()
        self._epoch = EntropySumAccumulator()
        self._epoch_started = time.perf_counter()
        return bool(done)

    # -- reading ---------------------------------------------------------------------------------------
    @property
    def history(self) -> dict[str, np.ndarray]:
        """The monitor's history: one entry per epoch for each field (``ConvergenceMonitor.history``)."""
        return self.monitor.history

    @property
    def n_epochs(self) -> int:
        """Epochs recorded."""
        return self.monitor.n_iter

    @property
    def should_stop(self) -> bool:
        """Whether a stopping rule has been met (the last ``end_epoch`` returned True)."""
        return self.monitor.stop_reason != "running"

    @property
    def stop_reason(self) -> str:
        """'running', 'tol', 'gap_tol', 'tol_and_gap_tol' or 'max_iter' (the monitor's)."""
        return self.monitor.stop_reason

    @property
    def relative_gap(self) -> np.ndarray:
        """``|F − S| / |F|`` per epoch."""
        return self.monitor.relative_gap

    def report(self) -> str:
        """Return the monitor's one-screen summary (``ConvergenceMonitor.report``)."""
        return self.monitor.report()

    def plot(self, axes: Any = None) -> Any:
        """Plot F and S per epoch and the convergence signals (``ConvergenceMonitor.plot``; needs matplotlib)."""
        return self.monitor.plot(axes)

    def __repr__(self) -> str:
        """Return the monitor's one-line summary."""
        return f"EntropySumMonitor({self.monitor!r})"


# -- differentiable objectives ----------------------------------------------------------------------------
def _shapes(x: Any, encoder_mean: Any, encoder_log_variance: Any, decoder_mean: Any) -> Any:
    """Check the shapes as the monitor does; return decoder_mean as (S, n, D)."""
    if x.dim() != 2:
        raise ValueError(f"x must be 2-D (n_points, n_features), got shape {tuple(x.shape)}.")
    n_points, n_features = x.shape
    if encoder_mean.dim() != 2 or encoder_mean.shape[0] != n_points:
        raise ValueError(f"encoder_mean must have shape ({n_points}, H) like x's rows, got "
                         f"{tuple(encoder_mean.shape)}.")
    if encoder_log_variance.shape != encoder_mean.shape:
        raise ValueError(f"encoder_log_variance must have encoder_mean's shape {tuple(encoder_mean.shape)}, got "
                         f"{tuple(encoder_log_variance.shape)}.")
    decoded = decoder_mean if decoder_mean.dim() == 3 else decoder_mean.unsqueeze(0)
    if decoded.dim() != 3 or tuple(decoded.shape[1:]) != (n_points, n_features):
        raise ValueError(f"decoder_mean must have x's shape {tuple(x.shape)} or (n_samples, {n_points}, "
                         f"{n_features}), got {tuple(decoder_mean.shape)}.")
    return decoded


def elbo(x: torch.Tensor, encoder_mean: torch.Tensor, encoder_log_variance: torch.Tensor,
         decoder_mean: torch.Tensor, decoder_log_variance: torch.Tensor | float | None = None,
         prior_log_variance: torch.Tensor | None = None) -> torch.Tensor:
    """Return the ELBO per data point of a batch, differentiable: Monte Carlo reconstruction plus analytic KL.

    F = (1/n) Σ_i [(1/S) Σ_s log N(x_i; μ(z_is), σ²) − KL(N(ν_i, τ_i²) ‖ N(0, α²))], the value
    :class:`EntropySumMonitor` records (maximise it; a loss is its negative). Arguments as for
    :meth:`EntropySumMonitor.update`; ``decoder_log_variance`` broadcasts against ``decoder_mean`` (a scalar, (D,),
    or decoder_mean's shape), None meaning σ² = 1.

    Returns
    -------
    torch.Tensor
        A scalar.
    """
    torch = import_torch()
    decoded = _shapes(x, encoder_mean, encoder_log_variance, decoder_mean)
    log_two_pi = math.log(2.0 * math.pi)
    log_sigma2 = torch.zeros((), dtype=decoded.dtype, device=decoded.device) if decoder_log_variance is None \
        else torch.as_tensor(decoder_log_variance, dtype=decoded.dtype, device=decoded.device)
    if log_sigma2.shape == decoder_mean.shape and log_sigma2.dim() == 2:
        log_sigma2 = log_sigma2.unsqueeze(0)
    residual2 = (x.unsqueeze(0) - decoded) ** 2
    log_density = -0.5 * (log_two_pi + log_sigma2 + residual2 * torch.exp(-log_sigma2))  # (S, n, D)
    reconstruction = log_density.sum(dim=2).mean(dim=0)  # (n,)
    prior_log = torch.zeros((), dtype=encoder_mean.dtype, device=encoder_mean.device) if prior_log_variance is None \
        else prior_log_variance
    kl = 0.5 * ((encoder_mean**2 + encoder_log_variance.exp()) * torch.exp(-prior_log) - 1.0
                - encoder_log_variance + prior_log).sum(dim=1)  # (n,)
    return (reconstruction - kl).mean()


def entropy_objective(x: torch.Tensor, encoder_mean: torch.Tensor, encoder_log_variance: torch.Tensor,
                      decoder_mean: torch.Tensor, *, decoder_variance: str = "scalar",
                      learned_prior: bool = False) -> torch.Tensor:
    """Return the entropy-based objective of a batch: the ELBO per data point at the optimal variances, differentiable.

    The decoder variance is replaced by its optimum for the batch, σ²* = mean over points, samples and features of
    (x − μ(z))² ('scalar') or per feature ('per_feature'), which turns the reconstruction term into the negative
    observable entropy −(D/2) log(2πe σ²*); with ``learned_prior`` the prior variances by α_h²* = mean of ν² + τ²,
    which makes the objective the entropy sum (1/n) Σ H[q_i] − H[N(0, α²*)] − H[N(·, σ²*)]. This is how the ES-ELBO
    trains sparse coding: the objective equals the ELBO maximised over those variances, so maximising it maximises
    the ELBO, with no variance to learn or tune. The optimum is taken over the batch (its gradient through σ²* and
    α²* is the ELBO's at them).

    Parameters
    ----------
    x, encoder_mean, encoder_log_variance, decoder_mean
        As for :meth:`EntropySumMonitor.update`.
    decoder_variance : {'scalar', 'per_feature'}
    learned_prior : bool
        Substitute the optimal prior variances too (else the prior is N(0, I)).

    Returns
    -------
    torch.Tensor
        A scalar to maximise.
    """
    torch = import_torch()
    decoded = _shapes(x, encoder_mean, encoder_log_variance, decoder_mean)
    if decoder_variance not in ("scalar", "per_feature"):
        raise ValueError(f"decoder_variance must be 'scalar' or 'per_feature' (the optimum of variances that depend "
                         f"on z has no closed form), got {decoder_variance!r}.")
    log_two_pi_e = math.log(2.0 * math.pi) + 1.0
    residual2 = (x.unsqueeze(0) - decoded) ** 2  # (S, n, D)
    if decoder_variance == "scalar":
        observable_entropy = 0.5 * x.shape[1] * (log_two_pi_e + torch.log(residual2.mean()))
    else:
        observable_entropy = 0.5 * (log_two_pi_e + torch.log(residual2.mean(dim=(0, 1)))).sum()
    second_moment = (encoder_mean**2 + encoder_log_variance.exp()).mean(dim=0)  # (H,) α²*
    mean_log_variance = encoder_log_variance.mean(dim=0)  # (H,)
    if learned_prior:
        kl = 0.5 * (torch.log(second_moment) - mean_log_variance).sum()
    else:
        kl = 0.5 * (second_moment - 1.0 - mean_log_variance).sum()
    return -observable_entropy - kl
