"""Anomaly detection with a Gaussian mixture: low density means anomalous."""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import numpy as np
from sklearn.base import OutlierMixin, clone

from gaussmix._base import GaussmixEstimator
from gaussmix._validation import check_sample_weight
from gaussmix.engines import get_engine
from gaussmix.exceptions import InvalidParameterError


def weighted_quantile(values: np.ndarray, weights: np.ndarray, fraction: float) -> float:
    """The ``fraction`` quantile of values with weights, interpolated like ``numpy.percentile``.

    A row of weight ``w`` counts as ``w`` repeated rows: with unit weights
    this is exactly ``numpy.percentile(values, 100 * fraction)`` (linear
    interpolation), and integer weights give the same value as repeated
    rows. Interpolating keeps the threshold strictly between two scores,
    so no training row sits exactly on it.
    """
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    keep = w > 0
    v, w = v[keep], w[keep]
    cumulative = np.cumsum(w)
    position = fraction * max(cumulative[-1] - 1.0, 0.0)
    low = math.floor(position)
    below = min(int(np.searchsorted(cumulative, low, side="right")), v.size - 1)
    above = min(int(np.searchsorted(cumulative, low + 1, side="right")), v.size - 1)
    return float(v[below] + (position - low) * (v[above] - v[below]))


def seeded_clone(template, random_state):
    """An unfitted copy of ``template``, given ``random_state`` when that is not None."""
    copy = clone(template)
    if random_state is not None and "random_state" in copy.get_params(deep=False):
        copy.set_params(random_state=random_state)
    return copy


class GaussianMixtureOutlierDetector(OutlierMixin, GaussmixEstimator):
    """Flag rows whose density under a fitted Gaussian mixture is low.

    Follows scikit-learn's outlier-detector conventions: ``predict`` returns
    +1 for inliers and -1 for outliers, ``score_samples`` is the
    log-density (higher is more normal), ``decision_function`` is
    ``score_samples - offset_`` (negative for outliers).

    Parameters
    ----------
    mixture : estimator or None, default=None
        The density model, cloned and fitted in ``fit``: a
        :class:`~gaussmix.GaussianMixture`, or a
        :class:`~gaussmix.GaussianMixtureSelector` to choose the components
        by BIC (the default, ``None``, uses a selector of 1 to 9 components
        over scikit-learn's four structures, "full", "tied", "diag" and
        "spherical"; pass a selector to compare mclust's fourteen). With a
        noise component (``GaussianMixture(noise=True)``, or a selector
        with ``noise=True``), the outliers are the rows more probably noise
        than signal: ``offset_`` is where the Gaussians' weighted density
        falls to the noise's, and ``contamination`` is not used.
    contamination : float in (0, 0.5], default=0.01
        Expected fraction of outliers in the training data: ``offset_`` is
        that (weighted) quantile of the training log-densities (of the rows
        of the common components, with ``min_weight``). Ignored when
        ``threshold`` is given or the mixture has a noise component.
    threshold : float or None, default=None
        A fixed floor instead: rows below it are outliers. It is a
        log-density unless ``threshold_type="density"``.
    threshold_type : {"log_density", "density"}, default="log_density"
    min_weight : float or None, default=None
        Components whose weight is below this are rare clusters, anomalies
        of their own: the density used for scoring is then the mixture of
        the other components (weights renormalised), so rows explained only
        by a rare component score low. Their indices are ``rare_components_``.
    random_state : int, RandomState instance or None, default=None
        Given to the mixture (unless None, which keeps the mixture's own).

    Attributes
    ----------
    mixture_ : the fitted density model (a ``GaussianMixture``)
    offset_ : float
        The log-density threshold.
    rare_components_ : ndarray of int
        Components lighter than ``min_weight`` (empty without it).
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from gaussmix import GaussianMixture, GaussianMixtureOutlierDetector
    >>> rng = np.random.RandomState(0)
    >>> X = np.vstack([rng.normal(0, 1, (200, 2)), [[8.0, 8.0]]])
    >>> detector = GaussianMixtureOutlierDetector(GaussianMixture(1), contamination=0.005).fit(X)
    >>> detector.predict([[0.1, -0.3], [8.0, 8.0]])
    array([ 1, -1])
    """

    _fitted_attributes = ("offset_", "mixture_", "rare_components_")

    def __init__(
        self,
        mixture: Any = None,
        *,
        contamination: float = 0.01,
        threshold: float | None = None,
        threshold_type: str = "log_density",
        min_weight: float | None = None,
        random_state: Any = None,
    ):
        self.mixture = mixture
        self.contamination = contamination
        self.threshold = threshold
        self.threshold_type = threshold_type
        self.min_weight = min_weight
        self.random_state = random_state

    def _check_params(self) -> None:
        c = self.contamination
        if isinstance(c, bool) or not isinstance(c, Real) or not 0.0 < c <= 0.5:
            raise InvalidParameterError(f"contamination must be a number in (0, 0.5], got {c!r}.")
        if self.threshold_type not in ("log_density", "density"):
            raise InvalidParameterError(
                f"threshold_type must be 'log_density' or 'density', got {self.threshold_type!r}."
            )
        t = self.threshold
        if t is not None and (isinstance(t, bool) or not isinstance(t, Real) or not math.isfinite(t)):
            raise InvalidParameterError(f"threshold must be a finite number or None, got {t!r}.")
        if t is not None and self.threshold_type == "density" and t <= 0:
            raise InvalidParameterError(f"a density threshold must be positive, got {t!r}.")
        w = self.min_weight
        if w is not None and (isinstance(w, bool) or not isinstance(w, Real) or not 0.0 <= w < 1.0):
            raise InvalidParameterError(f"min_weight must be a number in [0, 1) or None, got {w!r}.")

    def fit(self, X, y=None, sample_weight=None):
        """Fit the mixture to ``X`` and set the threshold ``offset_``."""

        self._check_params()
        self._guarded(self._fit, X, sample_weight)
        return self

    def _fit(self, X, sample_weight) -> None:
        from gaussmix._selector import GaussianMixtureSelector
        from gaussmix.covariance import SCIKIT_LEARN_STRUCTURES

        X = get_engine("numpy").check(self, X, reset=True, min_samples=2)
        weights = check_sample_weight(sample_weight, X.shape[0])
        template = (GaussianMixtureSelector(covariance_types=SCIKIT_LEARN_STRUCTURES) if self.mixture is None
                    else self.mixture)
        fitted = seeded_clone(template, self.random_state).fit(X, sample_weight=weights)
        mixture = getattr(fitted, "best_estimator_", fitted)
        mixture_weights = np.asarray(mixture.weights_, dtype=np.float64)
        if self.min_weight is None:
            rare = np.array([], dtype=int)
        else:
            rare = np.flatnonzero(mixture_weights < self.min_weight)
            if rare.size == mixture_weights.size:
                raise ValueError(
                    f"every component weighs less than min_weight={self.min_weight}; lower it."
                )
        normal = _without(mixture, rare)
        if self.threshold is not None:
            offset = float(math.log(self.threshold) if self.threshold_type == "density" else self.threshold)
        elif getattr(mixture, "noise_volume_", None) is not None:
            # outliers are the rows more probably noise than signal: the Gaussians' summed weighted density
            # (that of ``normal`` times the weight it keeps) below the noise's, weight / V
            kept = float(np.sum(np.delete(mixture_weights, rare)))
            offset = math.log(mixture.noise_proportion_) - math.log(mixture.noise_volume_) - math.log(kept)
        else:
            # The contamination is a fraction of the rows of the common components; rows of rare
            # components are anomalies already and fall below this threshold.
            common = ~np.isin(mixture.predict(X), rare)
            offset = weighted_quantile(normal.score_samples(X[common]), weights[common], self.contamination)
        self._write_fitted({"offset_": offset, "mixture_": mixture, "rare_components_": rare,
                            "n_features_in_": self.n_features_in_,
                            **({"feature_names_in_": self.feature_names_in_}
                               if hasattr(self, "feature_names_in_") else {})})

    def _restore_fitted(self, state) -> None:
        from gaussmix._loaded_state import outlier_detector_state

        self._check_params()
        self._write_fitted(outlier_detector_state(self, state))

    def _write_fitted(self, values) -> None:
        super()._write_fitted(values)
        # Derived with the state: the density used for scoring (the mixture without its rare components).
        self._normal = _without(self.mixture_, self.rare_components_)

    def _checked(self, X):
        self._check_fitted()
        return get_engine("numpy").check(self, X, reset=False)

    def score_samples(self, X):
        """Log-density of each row (under the non-rare components when ``min_weight`` is set)."""
        X = self._checked(X)
        return self._normal.score_samples(X).astype(np.float64, copy=False)

    def decision_function(self, X):
        """``score_samples(X) - offset_``: negative for outliers."""
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """+1 for inliers, -1 for outliers (log-density below ``offset_``)."""
        return np.where(self.decision_function(X) >= 0, 1, -1)

    def predict_component(self, X, *, min_responsibility: float | None = None):
        """Component labels that can say "I don't know this point".

        Returns the most probable component of each row, or -1 when the row
        is an outlier (``predict`` gives -1) or belongs to a rare component,
        and, with ``min_responsibility``, also when no component's
        responsibility reaches that level (an ambiguous row).

        Returns
        -------
        labels : ndarray of shape (n_samples,), int
        """
        if min_responsibility is not None and not 0.0 <= min_responsibility <= 1.0:
            raise InvalidParameterError(f"min_responsibility must be in [0, 1], got {min_responsibility!r}.")
        X = self._checked(X)
        resp = self.mixture_.predict_proba(X)
        labels = np.argmax(resp, axis=1)
        unknown = self._normal.score_samples(X) < self.offset_
        unknown |= labels >= self.mixture_.n_components  # the noise's column
        unknown |= np.isin(labels, self.rare_components_)
        if min_responsibility is not None:
            unknown |= resp.max(axis=1) < min_responsibility
        return np.where(unknown, -1, labels)


def _without(model, rare: np.ndarray):
    """``model`` without the components ``rare`` and its noise component (weights renormalised); ``model`` itself
    when it has neither."""
    if rare.size == 0 and getattr(model, "noise_volume_", None) is None:
        return model
    keep = np.setdiff1d(np.arange(model.n_components), rare)
    weights = np.asarray(model.weights_, dtype=np.float64)[keep]
    covariances = model._structure().layout.take_components(np.asarray(model.covariances_, dtype=np.float64), keep)
    return type(model).from_parameters(
        weights / weights.sum(), np.asarray(model.means_, dtype=np.float64)[keep], covariances,
        covariance_type=model.covariance_type,
    )
