"""The estimator contract shared by every model.

Parameters from ``__init__``, ``get_params``,
``set_params`` and a readable ``repr``, as in scikit-learn (whose ``clone`` works on them).
"""

from __future__ import annotations

import inspect
from typing import Any

from ..exceptions import not_fitted_error


class BaseEstimator:
    """Base of every estimator: parameters, ``get_params``/``set_params``, ``repr``, saving.

    Keyword arguments of ``__init__`` are the estimator's parameters, stored unchanged and
    validated in ``fit``; fitted attributes end in an underscore.
    """

    @classmethod
    def _param_names(cls) -> list[str]:
        parameters = inspect.signature(cls.__init__).parameters.values()
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return sorted(p.name for p in parameters if p.name != "self" and p.kind in kinds)

    def _store_params(self, arguments: dict[str, Any]) -> None:
        """Store the constructor's arguments as they are (``__init__`` passes ``locals()`` and does nothing else)."""
        for name in self._param_names():
            setattr(self, name, arguments[name])

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Parameters of this estimator, by name."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> BaseEstimator:
        """Set parameters by name; unknown names raise ``ValueError``."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for {type(self).__name__}; valid parameters are {valid}."
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        """Show the class and the parameters that differ from their defaults, as scikit-learn does."""
        defaults = {
            name: parameter.default
            for name, parameter in inspect.signature(type(self).__init__).parameters.items()
        }
        changed = [
            f"{name}={value!r}"
            for name, value in self.get_params().items()
            if not (name in defaults and _same(defaults[name], value))
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    #: scikit-learn's estimator type: "DensityEstimator" for the mixtures, None for the transformers.
    _estimator_type_tag: str | None = None
    #: What the data may hold, as scikit-learn's input tags: ``positive_only`` (non-negative values only),
    #: ``categorical`` (non-negative integers: counts). Binary data have no tag in scikit-learn.
    _input_tags: dict[str, bool] = {}

    def __sklearn_tags__(self) -> Any:
        """Tags for scikit-learn >= 1.6 (pipelines and ``check_estimator`` ask for them); it is imported only here."""
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        transformer = TransformerTags(preserves_dtype=["float64", "float32"]) if hasattr(self, "transform") else None
        return Tags(
            estimator_type=self._estimator_type_tag,
            target_tags=TargetTags(required=False),
            transformer_tags=transformer,
            # sparse: scipy.sparse input is taken (kept sparse) by the estimators that set _takes_sparse
            input_tags=InputTags(two_d_array=True, sparse=bool(getattr(self, "_takes_sparse", False)),
                                 **self._input_tags),
        )

    def save(self, path: Any) -> None:
        """Write the fitted model to ``path`` as an uncompressed ``.npz`` archive (``docs/model_format.md``).

        The file holds the fitted arrays, the monitor's history and JSON metadata (model class, parameters,
        dtype, entrosum version); ``entrosum.load`` and the C++ ``entrosum::load_model`` read it.
        """
        from ..io.model_io import save_model

        save_model(self, path)

    @classmethod
    def load(cls, path: Any) -> Any:
        """Read a model written by :meth:`save`; a file holding another model class raises ``ValueError``."""
        from ..io.model_io import load_model

        return load_model(path, expected=cls)

    def _check_fitted(self, attribute: str = "components_") -> None:
        """Raise NotFittedError before a fit; after one, check the fitted attributes (``_check_fitted_params``)."""
        if not hasattr(self, attribute):
            raise not_fitted_error()(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with appropriate arguments before "
                "using this estimator."  # scikit-learn's words
            )
        self._check_fitted_params()

    def _check_fitted_params(self) -> None:
        """Check the fitted attributes against each other and the settings (each estimator defines it)."""


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a is b or a == b)
    except (TypeError, ValueError):
        return False
