"""The three-entropy sum of Gaussian VAEs on numpy arrays, accumulated over mini-batches (DESIGN.md, "Gaussian VAEs").

For a VAE with prior p(z) = N(0, diag α²), encoder q_n = N(ν_n, diag τ_n²) and decoder p(x | z) = N(μ(z), diag σ²),
Damm et al. (arXiv:2010.14860) show that at convergence the ELBO equals a sum of three entropies,

    S = (1/N) Σ_n H[q_n] − H[p(z)] − (1/N) Σ_n E_{q_n} H[p(x | z)],

which needs only the encoder's and decoder's variances, while the ELBO needs the reconstruction of samples. Both
come from what a training step already computes: :class:`EntropySumAccumulator` adds up, batch by batch, the ELBO
(the Monte Carlo reconstruction term of the decoder's outputs at the samples z ~ q_n plus the analytic KL) and the
three entropies, as sums over data points, so an epoch's values are exact over the whole data set whatever the
batch size. Every loop over the data runs in C++ (``_core.gaussian_vae_accumulate``).

The decoder variance may be one scalar (VAE-1), one per feature, or a function of z (VAE-3: one per decoder output,
with the expected entropy taken by Monte Carlo over the encoder's samples); the prior the standard normal or
N(0, diag α²) (VAE-2). The closed-form optimal variances σ²* and α²* come from the same sums.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _core

#: The decoder variance's forms, named as the C++ core names them.
DECODER_VARIANCES = ("scalar", "per_feature", "per_sample")

#: What :meth:`EntropySumAccumulator.terms` returns, per data point.
TERMS = ("elbo", "entropy_sum", "posterior_entropy", "prior_entropy", "observable_entropy", "gap", "reconstruction",
         "kl_divergence")


def _array(value: Any, name: str) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}.")
    return array


def _check_finite(array: np.ndarray, name: str) -> None:
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds NaN or infinity; the training has diverged or the batch is corrupt.")


def batch_arrays(X: Any, encoder_mean: Any, encoder_log_variance: Any, decoder_mean: Any,
                 decoder_log_variance: Any = None, prior_log_variance: Any = None) -> tuple[dict[str, np.ndarray], str]:
    """Validate one mini-batch and return the arrays the C++ accumulator takes, and the decoder variance's form.

    Parameters
    ----------
    X : array-like of shape (n, D)
        The batch's data points.
    encoder_mean, encoder_log_variance : array-like of shape (n, H)
        ν_n and log τ_n² of q_n = N(ν_n, diag τ_n²).
    decoder_mean : array-like of shape (n, D) or (S, n, D)
        μ(z) at one sample z ~ q_n per point, or at S samples (sample-major, as ``decoder(z)`` gives for z of
        shape (S, n, H)).
    decoder_log_variance : None, scalar, array-like of shape (D,), or of decoder_mean's shape
        log σ²: None for σ² = 1 (a fixed unit variance), a scalar for one variance, (D,) for one per feature, or
        one per decoder output for variances that depend on z.
    prior_log_variance : None or array-like of shape (H,)
        log α² of the prior N(0, diag α²); None for the standard normal prior.

    Returns
    -------
    (arrays, decoder_variance)
        The C-contiguous arrays, all float32 when every input is float32 (else float64), and 'scalar',
        'per_feature' or 'per_sample'.

    Raises
    ------
    ValueError
        For shapes that do not fit together (the message names the argument, its shape and the shape expected),
        and for NaN or infinity.
    TypeError
        For non-numeric input.
    """
    x = _array(X, "X")
    mean = _array(encoder_mean, "encoder_mean")
    log_variance = _array(encoder_log_variance, "encoder_log_variance")
    decoded = _array(decoder_mean, "decoder_mean")
    if x.ndim != 2:
        raise ValueError(f"X must be 2-D (n_points, n_features), got shape {x.shape}.")
    n_points, n_features = x.shape
    if mean.ndim != 2 or mean.shape[0] != n_points:
        raise ValueError(f"encoder_mean must have shape (n_points, n_latent) = ({n_points}, H) like X's rows, got "
                         f"{mean.shape}.")
    if log_variance.shape != mean.shape:
        raise ValueError(f"encoder_log_variance must have encoder_mean's shape {mean.shape}, got {log_variance.shape}.")
    if decoded.ndim == 2:
        decoded = decoded[np.newaxis]
    if decoded.ndim != 3 or decoded.shape[1:] != (n_points, n_features) or decoded.shape[0] < 1:
        raise ValueError(f"decoder_mean must have X's shape {x.shape} or (n_samples, {n_points}, {n_features}) for "
                         f"several samples z per point, got {np.shape(decoder_mean)}.")
    n_samples = decoded.shape[0]

    if decoder_log_variance is None:
        decoded_log_variance = np.zeros((1, 1), dtype=decoded.dtype)  # σ² = 1, in the decoder's dtype
        form = "scalar"
    else:
        given = _array(decoder_log_variance, "decoder_log_variance")
        if given.size == 1 and given.ndim <= 1:
            decoded_log_variance, form = given.reshape(1, 1), "scalar"
        elif given.shape == (n_features,):
            decoded_log_variance, form = given.reshape(1, n_features), "per_feature"
        elif given.shape == np.shape(decoder_mean):
            decoded_log_variance, form = given.reshape(n_samples * n_points, n_features), "per_sample"
        else:
            raise ValueError(f"decoder_log_variance must be a scalar (one decoder variance), of shape ({n_features},) "
                             f"(one per feature) or of decoder_mean's shape {np.shape(decoder_mean)} (variances that "
                             f"depend on z), got shape {given.shape}.")
    if prior_log_variance is None:
        prior = np.empty(0)
    else:
        prior = _array(prior_log_variance, "prior_log_variance").astype(np.float64).reshape(-1)
        if prior.shape != (mean.shape[1],):
            raise ValueError(f"prior_log_variance must have one entry per latent dimension ({mean.shape[1]},), got "
                             f"shape {np.shape(prior_log_variance)}.")

    inputs = (x, mean, log_variance, decoded, decoded_log_variance)
    dtype = np.float32 if all(a.dtype == np.float32 for a in inputs) else np.float64
    arrays: dict[str, np.ndarray] = {
        "data": np.ascontiguousarray(x, dtype=dtype),
        "encoder_mean": np.ascontiguousarray(mean, dtype=dtype),
        "encoder_log_variance": np.ascontiguousarray(log_variance, dtype=dtype),
        "decoder_mean": np.ascontiguousarray(decoded.reshape(n_samples * n_points, n_features), dtype=dtype),
        "decoder_log_variance": np.ascontiguousarray(decoded_log_variance, dtype=dtype),
        "prior_log_variance": prior,
    }
    for name, array in arrays.items():
        _check_finite(array, name if name != "data" else "X")
    return arrays, form


class EntropySumAccumulator:
    """The ELBO and the three-entropy sum of a Gaussian VAE, summed over mini-batches.

    Add every batch of an epoch with :meth:`add`; :meth:`terms` then gives, per data point over all of them, the
    ELBO F, the entropy sum S, its three terms and the gap F − S. The sums are exact whatever the batch size: the
    values over batches of 1, 7 or all rows agree to rounding. Each batch is evaluated with the decoder and prior
    variances it is given, which during training are those in force for that batch. Accumulators of disjoint
    batches merge with ``+=``.

    Examples
    --------
    >>> acc = EntropySumAccumulator()  # doctest: +SKIP
    >>> for x in batches:  # doctest: +SKIP
    ...     acc.add(x, mean, log_variance, decoded, log_sigma2)
    >>> acc.terms()["gap"], acc.optimal_noise_variance()  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self._stats = _core.GaussianVaeStats()
        #: 'scalar', 'per_feature' or 'per_sample': the decoder variance of the batches added (None before the first).
        self.decoder_variance: str | None = None
        #: Whether the batches had a learned prior (prior_log_variance given), None before the first.
        self.learned_prior: bool | None = None

    @property
    def count(self) -> int:
        """Number of data points added."""
        return int(self._stats.count)

    @property
    def statistics(self) -> Any:
        """The summed statistics (``_core.GaussianVaeStats``: mergeable, picklable)."""
        return self._stats

    def add(self, X: Any, encoder_mean: Any, encoder_log_variance: Any, decoder_mean: Any,
            decoder_log_variance: Any = None, prior_log_variance: Any = None) -> EntropySumAccumulator:
        """Add one mini-batch.

        Parameters
        ----------
        X : array-like of shape (n, D)
            The batch.
        encoder_mean, encoder_log_variance : array-like of shape (n, H)
            ν_n and log τ_n².
        decoder_mean : array-like of shape (n, D) or (S, n, D)
            μ(z) at the samples z ~ q_n the training drew (S per point, sample-major).
        decoder_log_variance : None, scalar, array-like of shape (D,) or of decoder_mean's shape
            log σ²; None means σ² = 1.
        prior_log_variance : None or array-like of shape (H,)
            log α² of a learned prior N(0, diag α²); None for N(0, I).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            For shapes that do not fit (together or with earlier batches), NaN or infinity, or a batch whose decoder
            variance or prior has another form than earlier batches'.
        """
        arrays, form = batch_arrays(X, encoder_mean, encoder_log_variance, decoder_mean, decoder_log_variance,
                                    prior_log_variance)
        learned = prior_log_variance is not None
        if self.decoder_variance is not None and (form, learned) != (self.decoder_variance, self.learned_prior):
            prior = "a learned" if learned else "the standard"
            raise ValueError(f"this batch has a {form} decoder variance and {prior}"
                             f" prior; earlier batches had a {self.decoder_variance} one and "
                             f"{'a learned' if self.learned_prior else 'the standard'} prior. Give every batch of an "
                             "epoch in the same form.")
        _core.gaussian_vae_accumulate(self._stats, decoder_variance=form, **arrays)
        self.decoder_variance, self.learned_prior = form, learned
        return self

    def __iadd__(self, other: EntropySumAccumulator) -> EntropySumAccumulator:
        """Merge the sums of another accumulator (of other data points)."""
        if not isinstance(other, EntropySumAccumulator):
            return NotImplemented
        if other.count == 0:
            return self
        if self.decoder_variance is not None and \
                (other.decoder_variance, other.learned_prior) != (self.decoder_variance, self.learned_prior):
            raise ValueError("cannot merge accumulators of batches with different decoder variances or priors.")
        self._stats += other._stats
        self.decoder_variance, self.learned_prior = other.decoder_variance, other.learned_prior
        return self

    def reset(self) -> None:
        """Forget every batch (start a new epoch)."""
        self._stats = _core.GaussianVaeStats()
        self.decoder_variance = None
        self.learned_prior = None

    def _require_points(self) -> None:
        if self.count == 0:
            raise ValueError("no batch has been added yet; call add() first.")

    def terms(self) -> dict[str, float]:
        """Return the ELBO, the entropy sum, its terms and the gap, per data point over every batch added.

        Returns
        -------
        dict
            ``elbo`` (F), ``entropy_sum`` (S = posterior_entropy − prior_entropy − observable_entropy),
            ``posterior_entropy`` ((1/N) Σ H[q_n]), ``prior_entropy`` (H[p(z)]), ``observable_entropy``
            ((1/N) Σ E H[p(x|z)]), ``gap`` (F − S), ``reconstruction`` and ``kl_divergence`` (F's two parts).
        """
        self._require_points()
        values = _core.gaussian_vae_terms(self._stats)
        count = self._stats.count
        return {"elbo": values["elbo"], "entropy_sum": values["entropy_sum"],
                "posterior_entropy": values["posterior_entropy"], "prior_entropy": values["prior_entropy"],
                "observable_entropy": values["observable_entropy"], "gap": values["elbo"] - values["entropy_sum"],
                "reconstruction": self._stats.reconstruction / count,
                "kl_divergence": self._stats.kl_divergence / count}

    def optimal_noise_variance(self, per_feature: bool = False) -> Any:
        """Return the decoder variance that maximises the ELBO of these batches, in closed form.

        Parameters
        ----------
        per_feature : bool
            False: one σ²* = (1/(N D)) Σ_n E‖x_n − μ(z)‖² (a float); True: σ_d²* = (1/N) Σ_n E (x_nd − μ_d(z))²
            (an array of shape (D,)). The expectations are the Monte Carlo averages over the samples given.
        """
        self._require_points()
        if per_feature:
            return np.asarray(_core.gaussian_vae_optimal_noise_variances(self._stats))
        return float(_core.gaussian_vae_optimal_noise_variance(self._stats))

    def optimal_prior_variances(self) -> np.ndarray:
        """Return the prior variances α_h²* = (1/N) Σ_n (ν_nh² + τ_nh²) that maximise the ELBO, shape (H,).

        With the standard normal prior, the gap F − S that stays at the optimal decoder variance is
        ½ Σ_h (1 − α_h²*): it closes where the encoder and a linear first decoder layer are stationary.
        """
        self._require_points()
        return np.asarray(_core.gaussian_vae_optimal_prior_variances(self._stats))

    def optimal_terms(self, *, decoder_variance: str | None = None, learned_prior: bool | None = None
                      ) -> dict[str, float]:
        """Return F and the entropy sum with the optimal variances substituted (the entropy-based objective).

        Parameters
        ----------
        decoder_variance : {'scalar', 'per_feature'}, optional
            The form of σ²* (default: the batches' form; 'per_sample' has no closed form).
        learned_prior : bool, optional
            Substitute α²* too (default: whether the batches had a learned prior); else the prior is N(0, I).

        Returns
        -------
        dict
            As :meth:`terms` (without the two parts of F). With both variances optimal F = S exactly.
        """
        self._require_points()
        form = decoder_variance if decoder_variance is not None else self.decoder_variance
        if form not in ("scalar", "per_feature"):
            raise ValueError(f"the optimal decoder variance has a closed form for 'scalar' or 'per_feature' decoder "
                             f"variances, not {form!r} (variances that depend on z are the decoder's outputs).")
        learned = bool(self.learned_prior) if learned_prior is None else bool(learned_prior)
        values = _core.gaussian_vae_optimal_terms(self._stats, form, learned)
        names = ("elbo", "entropy_sum", "posterior_entropy", "prior_entropy", "observable_entropy")
        return {name: values[name] for name in names} | {"gap": values["elbo"] - values["entropy_sum"]}

    def __repr__(self) -> str:
        """Return the number of points and the form of the batches."""
        return (f"EntropySumAccumulator(count={self.count}, decoder_variance={self.decoder_variance!r}, "
                f"learned_prior={self.learned_prior!r})")


def entropy_sum(X: Any, encoder_mean: Any, encoder_log_variance: Any, decoder_mean: Any,
                decoder_log_variance: Any = None, prior_log_variance: Any = None) -> dict[str, float]:
    """Return the ELBO, the three-entropy sum, its terms and the gap per data point of one set of arrays.

    The same as one :meth:`EntropySumAccumulator.add` followed by :meth:`EntropySumAccumulator.terms`; the
    parameters are :meth:`EntropySumAccumulator.add`'s.

    Returns
    -------
    dict
        ``elbo``, ``entropy_sum``, ``posterior_entropy``, ``prior_entropy``, ``observable_entropy``, ``gap``,
        ``reconstruction``, ``kl_divergence``.
    """
    return EntropySumAccumulator().add(X, encoder_mean, encoder_log_variance, decoder_mean, decoder_log_variance,
                                       prior_log_variance).terms()
