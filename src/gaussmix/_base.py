"""The base of every gaussmix estimator: one writer of the fitted state, the fit guard, saving.

:class:`GaussmixEstimator` owns the one writer of the fitted state
(:meth:`~GaussmixEstimator._write_fitted`), the fit guard that leaves an
estimator as it was when a fit fails, and saving (model files store the
estimator's name, hyper-parameters and fitted state; loading checks the
state and writes it through the same writer). The mixtures' template,
:class:`~gaussmix._mixture.BaseMixture`, builds on it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sklearn.base import BaseEstimator

from gaussmix._persistence import SaveMixin, register_estimator
from gaussmix.exceptions import NotFittedError


class GaussmixEstimator(SaveMixin, BaseEstimator):
    """The base of every gaussmix estimator.

    Subclasses list their fitted attributes in ``_fitted_attributes`` (the
    first one tells whether the estimator is fitted); ``n_features_in_`` is
    always one, ``feature_names_in_`` one when the training data had string
    column names.
    """

    _fitted_attributes: ClassVar[tuple[str, ...]] = ()
    #: whether the class is a base for others (never an estimator a model file names)
    _abstract: ClassVar[bool] = True
    #: fitted attributes some fits set and others do not (besides ``feature_names_in_``)
    _optional_attributes: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Model files find gaussmix's own estimators by class name; a user's subclass is not one of them.
        if not cls.__dict__.get("_abstract", False) and cls.__module__.split(".")[0] == "gaussmix":
            register_estimator(cls)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, self._fitted_attributes[0])

    def _check_fitted(self) -> None:
        """:class:`~gaussmix.exceptions.NotFittedError` unless the estimator is fitted."""
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with appropriate "
                "arguments before using this estimator."
            )

    def _write_fitted(self, values: dict[str, Any]) -> None:
        """Set the fitted attributes to ``values`` (exactly the declared ones), removing any stale ones."""
        declared = {*self._fitted_attributes, "n_features_in_"}
        optional = {*self._optional_attributes, "feature_names_in_"}
        missing = declared - set(values)
        unknown = set(values) - declared - optional
        if missing or unknown:
            raise TypeError(f"{type(self).__name__} state: missing {sorted(missing)}, unknown {sorted(unknown)}")
        for name in (*declared, *optional):
            vars(self).pop(name, None)
        vars(self).update(values)

    def _fitted_values(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}

    def _guarded(self, function, *args, **kwargs):
        """``function(*args, **kwargs)``; if it raises, the fitted state is restored to what it was."""
        saved = self._fitted_values()
        try:
            return function(*args, **kwargs)
        except BaseException:
            for key in self._fitted_values():
                vars(self).pop(key)
            vars(self).update(saved)
            raise

    def _restore_fitted(self, state: dict[str, Any]) -> None:
        """Check the fitted ``state`` read from a model file and write it (raises ValueError or ModelFileError)."""
        raise NotImplementedError
