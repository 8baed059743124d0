"""Classification with one Gaussian mixture per class (mclust's MclustDA and EDDA)."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

from gaussmix._base import GaussmixEstimator
from gaussmix._outliers import seeded_clone
from gaussmix._validation import check_choice, check_sample_weight, unit_exponent
from gaussmix.covariance import SCIKIT_LEARN_STRUCTURES, get_structure
from gaussmix.engines import get_engine
from gaussmix.exceptions import InvalidParameterError

ModelType = Literal["MclustDA", "EDDA"]


class GaussianMixtureClassifier(ClassifierMixin, GaussmixEstimator):
    """Bayes classifier with a Gaussian mixture for each class's density.

    ``predict_proba`` is Bayes' rule in log space:
    ``p(c | x) ∝ prior_c p(x | c)``, each ``p(x | c)`` a mixture fitted to
    the rows of class ``c``.

    Parameters
    ----------
    mixture : estimator, dict or None, default=None
        For ``model_type="MclustDA"``: the density model of every class,
        cloned and fitted per class. A :class:`~gaussmix.GaussianMixture`
        fixes the number of components and the structure; a
        :class:`~gaussmix.GaussianMixtureSelector` chooses them by BIC for
        each class separately (the default, ``None``, searches 1 to 5
        components and scikit-learn's four structures; mclust's MclustDA
        searches its fourteen models: pass a ``GaussianMixtureSelector``
        for that). A dict maps class labels to their own estimators.
    model_type : {"MclustDA", "EDDA"}, default="MclustDA"
        "EDDA": one Gaussian per class, with one covariance structure common
        to all classes, chosen by the total BIC among ``covariance_types``.
        Its "tied" candidate shares one covariance matrix across classes
        (linear discriminant analysis); "full" gives each class its own
        (quadratic discriminant analysis).
    covariance_types : iterable of str or None, default=None
        EDDA's candidate structures (default: scikit-learn's four; any
        registered name, scikit-learn's or mclust's).
    priors : array-like of shape (n_classes,), dict, "uniform" or None, default=None
        Class priors, in the order of ``classes_`` or as a dict from class
        label to prior; ``None`` uses the (weighted) class frequencies of the
        training data.
    reg_covar : float, default=1e-6
        EDDA's regularisation, relative to each feature's variance (the
        mixtures of MclustDA use their own ``reg_covar``).
    random_state : int, RandomState instance or None, default=None
        Given to every class's mixture (unless None, which keeps the
        mixture's own).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    class_prior_ : ndarray of shape (n_classes,)
    models_ : dict
        The fitted mixture of each class.
    structure_ : str
        EDDA only: the chosen covariance structure.
    edda_bic_ : dict
        EDDA only: total BIC of each candidate structure (lower is better).
    n_features_in_ : int

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from gaussmix import GaussianMixtureClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = GaussianMixtureClassifier(model_type="EDDA").fit(X, y)
    >>> clf.structure_, round(clf.score(X, y), 3)
    ('full', 0.98)
    """

    _fitted_attributes = ("models_", "classes_", "class_prior_")
    _optional_attributes = ("structure_", "edda_bic_")  # EDDA's choice

    def __init__(
        self,
        mixture: Any = None,
        *,
        model_type: ModelType = "MclustDA",
        covariance_types: Any = None,
        priors: Any = None,
        reg_covar: float = 1e-6,
        random_state: Any = None,
    ):
        self.mixture = mixture
        self.model_type = model_type
        self.covariance_types = covariance_types
        self.priors = priors
        self.reg_covar = reg_covar
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None):
        """Fit one mixture per class and the class priors."""
        check_choice(self.model_type, "model_type", ("MclustDA", "EDDA"))
        self._guarded(self._fit, X, y, sample_weight)
        return self

    def _fit(self, X, y, sample_weight) -> None:
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], ensure_min_samples=2)
        check_classification_targets(y)
        weights = check_sample_weight(sample_weight, X.shape[0])
        classes, encoded = np.unique(y, return_inverse=True)
        self.classes_ = classes  # priors and messages name the classes
        # Priors do not depend on the weights' scale; summed at unit scale, 1e308 or 1e-320 weights stay finite.
        unit = np.ldexp(weights, unit_exponent(float(np.max(weights))))
        class_weight = np.bincount(encoded, weights=unit, minlength=len(self.classes_))
        empty = [c for c, w in zip(classes, class_weight) if w <= 0]
        if empty:
            raise ValueError(
                f"class {_show(empty[0])} has no rows with positive weight; every class needs data to model "
                "its density."
            )
        fitted = {"classes_": classes, "class_prior_": self._priors(class_weight),
                  "n_features_in_": self.n_features_in_}
        if hasattr(self, "feature_names_in_"):
            fitted["feature_names_in_"] = self.feature_names_in_
        if self.model_type == "MclustDA":
            fitted["models_"] = {
                label: self._fit_class(label, X[encoded == c], weights[encoded == c]) for c, label in enumerate(classes)
            }
        else:
            fitted.update(self._fit_edda(X, weights, encoded))
        self._write_fitted(fitted)

    def _restore_fitted(self, state) -> None:
        from gaussmix._loaded_state import classifier_state

        self._write_fitted(classifier_state(self, state))

    def _priors(self, class_weight: np.ndarray) -> np.ndarray:
        if self.priors is None:
            return class_weight / class_weight.sum()
        if isinstance(self.priors, str):
            if self.priors != "uniform":
                raise InvalidParameterError(f"priors must be None, 'uniform' or an array, got {self.priors!r}.")
            return np.full(len(self.classes_), 1.0 / len(self.classes_))
        given = self.priors
        if isinstance(given, dict):
            classes = [c.item() if hasattr(c, "item") else c for c in self.classes_]
            unknown = [k for k in given if k not in classes]
            missing = [c for c in classes if c not in given]
            if unknown or missing:
                problem = (f"no class {_show(unknown[0])} in the training labels" if unknown
                           else f"no prior for class {_show(missing[0])}")
                raise InvalidParameterError(
                    f"priors given as a dict must map each class of {classes} to its prior; {problem}."
                )
            given = [given[c] for c in classes]
        try:
            priors = np.asarray(given, dtype=np.float64)
        except (TypeError, ValueError):
            priors = np.full(1, np.nan)
        if priors.shape != (len(self.classes_),) or np.any(priors <= 0) or not np.all(np.isfinite(priors)):
            raise InvalidParameterError(
                f"priors must be {len(self.classes_)} positive numbers (one per class of {list(self.classes_)}, "
                f"as an array in that order or a dict by class), got {self.priors!r}."
            )
        if not math.isclose(priors.sum(), 1.0, abs_tol=1e-6):
            raise InvalidParameterError(
                f"priors must sum to 1, got sum {priors.sum():.10g} (1{priors.sum() - 1.0:+.3g}); divide them by "
                "their sum."
            )
        return priors

    def _fit_class(self, label, X, weights):
        from gaussmix._selector import GaussianMixtureSelector

        if isinstance(self.mixture, dict):
            if label not in self.mixture:
                raise InvalidParameterError(f"mixture has no estimator for class {_show(label)}.")
            template = self.mixture[label]
        else:
            template = (GaussianMixtureSelector(n_components=range(1, 6), covariance_types=SCIKIT_LEARN_STRUCTURES)
                        if self.mixture is None else self.mixture)
        try:
            fitted = seeded_clone(template, self.random_state).fit(X, sample_weight=weights)
        except ValueError as exc:
            raise type(exc)(f"fitting the density of class {_show(label)}: {exc}") from exc
        return getattr(fitted, "best_estimator_", fitted)

    def _fit_edda(self, X, weights, encoded) -> dict[str, Any]:
        """One Gaussian per class, one structure for all: an M-step with responsibilities fixed to the labels.

        With the labels as responsibilities, a structure's M-step gives each
        class its own covariance (full, diag, spherical) or one pooled
        covariance ("tied"), exactly as EDDA's models do.
        """
        from gaussmix._gaussian_mixture import GaussianMixture
        from gaussmix.em.init import labelled_statistics
        from gaussmix.em.models import MaximumLikelihood
        from gaussmix.em.scale import DataScale

        data = get_engine("numpy").prepare(X, weights, device=None).source
        scale = DataScale.of(data, self.reg_covar)
        n_classes, d = len(self.classes_), X.shape[1]
        n_total = float(weights.sum())
        names = list(SCIKIT_LEARN_STRUCTURES if self.covariance_types is None else self.covariance_types)
        candidates = {}
        for name in names:
            structure = get_structure(name)
            stats = labelled_statistics(data, structure, encoded, n_classes)
            params, _ = MaximumLikelihood(structure, scale).update(stats, None)
            full = structure.layout.full_covariances(params.covariances, n_classes, d)
            models = {
                label: GaussianMixture.from_parameters([1.0], params.means[c : c + 1], full[c : c + 1])
                for c, label in enumerate(self.classes_)
            }
            loglik = sum(
                float(np.dot(weights[encoded == c], models[label].score_samples(X[encoded == c])))
                for c, label in enumerate(self.classes_)
            )
            n_parameters = n_classes * d + structure.n_covariance_parameters(n_classes, d)
            candidates[name] = (-2.0 * loglik + n_parameters * math.log(n_total), models)
        best = min(candidates, key=lambda name: candidates[name][0])
        return {"structure_": best, "edda_bic_": {name: bic for name, (bic, _) in candidates.items()},
                "models_": candidates[best][1]}

    # -- prediction --------------------------------------------------------
    def _checked(self, X):
        self._check_fitted()
        return get_engine("numpy").check(self, X, reset=False)

    def _joint_log_likelihood(self, X):
        X = self._checked(X)
        log_prior = np.log(self.class_prior_)
        columns = [self.models_[label].score_samples(X) for label in self.classes_]
        return np.column_stack(columns).astype(np.float64) + log_prior

    def predict_log_proba(self, X):
        """Log posterior class probabilities, shape (n_samples, n_classes)."""
        from scipy.special import logsumexp

        joint = self._joint_log_likelihood(X)
        return joint - logsumexp(joint, axis=1, keepdims=True)

    def predict_proba(self, X):
        """Posterior class probabilities (Bayes' rule), shape (n_samples, n_classes)."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X):
        """The class of highest posterior probability for each row."""
        joint = self._joint_log_likelihood(X)
        return self.classes_[np.argmax(joint, axis=1)]


def _show(label) -> str:
    """A class label for messages: quoted if it is text, plain otherwise."""
    return repr(label) if isinstance(label, str) else str(label)
