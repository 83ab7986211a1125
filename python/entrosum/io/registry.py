"""The model families that the saved-model format, the command line and the large-data machinery know.

One entry per family: its short name on the command line, its estimator class (looked up by name in the
``entrosum`` package, so a family whose class has not landed yet is listed but reported as unavailable),
and the command-line options that map onto its constructor. A new model is one ``register`` call.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelFamily:
    """A model family known to the command line and to ``entrosum.load``."""

    #: Short name on the command line, e.g. ``"gmm"``.
    name: str
    #: Name of the estimator class in the ``entrosum`` package, e.g. ``"GaussianMixture"``.
    class_name: str
    #: One line for ``entrosum fit --help``.
    summary: str
    #: Command-line options (argparse destinations) this family accepts beyond the common ones.
    options: tuple[str, ...] = field(default=())

    def estimator_class(self) -> type | None:
        """Return the estimator class, or None while it is not part of this version of entrosum."""
        import entrosum

        return getattr(entrosum, self.class_name, None)


_FAMILIES: dict[str, ModelFamily] = {}


def register(family: ModelFamily) -> ModelFamily:
    """Add a family; its short name and class name must be new."""
    if family.name in _FAMILIES or any(f.class_name == family.class_name for f in _FAMILIES.values()):
        raise ValueError(f"model family {family.name!r} ({family.class_name}) is registered already")
    _FAMILIES[family.name] = family
    return family


def families() -> list[ModelFamily]:
    """Every registered family, in registration order."""
    return list(_FAMILIES.values())


def by_name(name: str) -> ModelFamily | None:
    """Return the family with the command-line name ``name``, or None."""
    return _FAMILIES.get(name)


def by_class_name(class_name: str) -> ModelFamily | None:
    """Return the family whose estimator class is named ``class_name``, or None."""
    return next((f for f in _FAMILIES.values() if f.class_name == class_name), None)


register(ModelFamily("gmm", "GaussianMixture",
                     "Gaussian mixture (full, tied, diag, spherical, tied_diag or tied_spherical covariances)",
                     ("covariance_type",)))
register(ModelFamily("bernoulli", "BernoulliMixture", "Bernoulli mixture for binary data"))
register(ModelFamily("poisson", "PoissonMixture", "Poisson mixture for counts"))
register(ModelFamily("binomial", "BinomialMixture", "binomial mixture for counts out of known numbers of trials",
                     ("n_trials",)))
register(ModelFamily("exponential", "ExponentialMixture", "exponential mixture for positive values"))
register(ModelFamily("categorical", "CategoricalMixture", "categorical mixture for integer codes", ("n_levels",)))
register(ModelFamily("multinomial", "MultinomialMixture", "multinomial mixture for count vectors (bags of words)"))
register(ModelFamily("gamma", "GammaMixture", "gamma mixture for positive values (shapes and rates learned)"))
register(ModelFamily("mixed", "MixedMixture", "mixture for tables with a family per column (gaussian, bernoulli, "
                     "poisson, binomial, categorical, exponential, gamma)", ("families", "n_trials", "n_levels")))
register(ModelFamily("ppca", "PPCA", "probabilistic PCA"))
register(ModelFamily("fa", "FactorAnalysis", "factor analysis"))
register(ModelFamily("sparse", "SparseCoding", "Laplace-prior sparse coding"))
register(ModelFamily("linear_vae", "LinearVAE", "linear variational autoencoder (closed-form ELBO, L-BFGS)"))
register(ModelFamily("bsc", "BinarySparseCoding", "binary sparse coding (binary causes, Gaussian noise)"))
register(ModelFamily("sbn", "SigmoidBeliefNet", "sigmoid belief net (binary causes of binary data)"))
