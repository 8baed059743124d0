"""scikit-learn's mixture API as one template: :class:`BaseMixture`.

Fitting with restarts through an engine (:mod:`gaussmix.engines`), the
warnings a fit raises, ``score_samples``/``predict``/``predict_proba``/
``score``/``sample``/``bic``/``aic``, and fitted models built without EM
(``from_parameters``, ``marginal``). A mixture estimator defines its
hyper-parameters, :meth:`~BaseMixture._checked_settings` and, when it does
not fit by maximum likelihood, :meth:`~BaseMixture._em_model`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace
from numbers import Real
from typing import Any

import numpy as np
from sklearn.base import DensityMixin
from sklearn.utils import check_random_state

from gaussmix._base import GaussmixEstimator
from gaussmix._noise import noise_start
from gaussmix._state import MIXTURE_ATTRIBUTES, MixtureState
from gaussmix._validation import (
    check_initial_partition,
    check_means_init,
    check_prior_shapes,
    check_weights_init,
)
from gaussmix.covariance import ONE_FEATURE_MODELS, check_features, get_structure
from gaussmix.covariance._structure import CovarianceStructure
from gaussmix.em.fit import FitSettings, fit_mixture, maximum_likelihood
from gaussmix.em.init import GivenResponsibilities, LabelResponsibilities
from gaussmix.em.kernels import LABELS, LOG_DENSITY, RESPONSIBILITIES, UNCERTAINTY
from gaussmix.em.loop import EMResult
from gaussmix.em.models import EMModel
from gaussmix.em.observers import CallbackObserver, ObserverGroup, VerbosePrinter
from gaussmix.em.params import MixtureParams, checked_params
from gaussmix.em.scale import constant_features_message
from gaussmix.engines import FitData, resolve_engine
from gaussmix.exceptions import (
    CollapsedComponentWarning,
    ConstantFeatureWarning,
    ConvergenceWarning,
    EmptyComponentWarning,
    InvalidParameterError,
)

#: scikit-learn's warning, kept first so that filters matching it keep working.
SKLEARN_NOT_CONVERGED = (
    "Best performing initialization did not converge. Try different init parameters, or increase "
    "max_iter, tol, or check for degenerate data."
)


class BaseMixture(DensityMixin, GaussmixEstimator):
    """scikit-learn's mixture API over EM on summed statistics (see the module docstring)."""

    _abstract = True
    _fitted_attributes = MIXTURE_ATTRIBUTES
    #: with a noise component: its region's volume and bounding box
    _optional_attributes = ("noise_volume_", "noise_bounds_")
    #: recomputed from the other attributes rather than stored in model files
    _derived_attributes = ("precisions_",)

    # -- hooks --------------------------------------------------------------------
    def _checked_settings(self) -> FitSettings:
        """Validate the hyper-parameters and bundle those that define the fit."""
        raise NotImplementedError

    def _check_reporting(self, *flags: str) -> None:
        """InvalidParameterError unless ``verbose``, ``verbose_interval`` and ``callback`` are usable and each of
        ``flags`` names a boolean hyper-parameter that is True or False."""
        from gaussmix._validation import check_int

        check_int(self.verbose, "verbose", 0)
        check_int(self.verbose_interval, "verbose_interval", 1)
        if self.callback is not None and not callable(self.callback):
            raise InvalidParameterError(
                f"callback must be a callable taking one IterationInfo, or None; got {self.callback!r}."
            )
        for name in flags:
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise InvalidParameterError(f"{name} must be True or False, got {getattr(self, name)!r}.")

    def _em_model(self, data: FitData, settings: FitSettings) -> EMModel:
        """What EM optimises for these data (maximum likelihood, or a posterior with ``settings.prior``)."""
        if settings.prior is None:
            return maximum_likelihood(data.source, settings)
        check_prior_shapes(settings.prior, data.source.n_features)
        try:
            row_weight = math.ldexp(1.0, data.weight_exponent)
        except OverflowError:
            raise InvalidParameterError(
                "the sample weights are too small for a prior, which is worth rows of weight 1 (their sum is "
                f"below 2^-{data.weight_exponent - 60}); scale them up"
            ) from None
        return maximum_likelihood(data.source, settings, row_weight)

    def _state_extra(self, model: EMModel, params: MixtureParams) -> dict[str, Any]:
        """Fitted attributes beyond a Gaussian mixture's that a fit of ``model`` leaves (a posterior's, say)."""
        return {}

    def _structure(self) -> CovarianceStructure:
        return get_structure(self.covariance_type)

    def _engine(self, X):
        return resolve_engine(self.engine, self.device, X)

    # -- fitting ------------------------------------------------------------------
    def fit(self, X, y=None, sample_weight=None):
        """Estimate the parameters with EM (``n_init`` times; the best run is kept).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows; float32 input is computed and stored in float32.
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative row weights. A weight of 2 counts a row twice; a
            weight of 0 is the same as leaving the row out.

        Returns
        -------
        self
        """
        self._guarded(self._fit, X, sample_weight)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then return the most probable component of each row of ``X``.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        self._guarded(self._fit, X, sample_weight)  # warnings point at the caller, as from fit
        return self.predict(X)

    def _fit(self, X, sample_weight) -> None:
        settings = self._checked_settings()
        data = self._engine(X).fit_data(self, X, sample_weight, device=self.device)
        self._fit_on(data, settings, getattr(self, "feature_names_in_", None))

    def _fit_on(self, data: FitData, settings: FitSettings | None = None, feature_names: Any = None) -> None:
        """Fit to prepared data (a selector prepares its data once for every candidate)."""
        settings = self._checked_settings() if settings is None else settings
        source = data.source
        if data.n_positive < settings.n_components:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = {settings.n_components}, "
                f"n_samples = {data.n_positive} (rows with positive weight); use fewer components."
            )
        n_features = source.n_features
        check_features(self.covariance_type, n_features)
        weights_init = (
            None if self.weights_init is None else check_weights_init(self.weights_init, settings.n_components)
        )
        means_init = (
            None if self.means_init is None else check_means_init(self.means_init, settings.n_components, n_features)
        )
        precisions_init = (
            None
            if self.precisions_init is None
            else settings.structure.check_precisions(self.precisions_init, settings.n_components, n_features)
        )
        warm = self._warm_start_from(settings, n_features) if self.warm_start and self.__sklearn_is_fitted__() else None
        given = None
        noise = noise_start(self, data, settings)
        if noise is not None:
            settings, signal, bounds, labels = noise
        else:
            signal, bounds, labels = None, None, self.init_params
        if settings.init == "given" and warm is None:
            kind, values = check_initial_partition(labels, source.n_samples, settings.n_components)
            given = (LabelResponsibilities(values, settings.n_components) if kind == "labels"
                     else GivenResponsibilities(values))
        observers = []
        if self.verbose:
            observers.append(VerbosePrinter(self.verbose, self.verbose_interval))
        if self.callback is not None:
            observers.append(CallbackObserver(self.callback))
        model = self._em_model(data, settings)
        result = fit_mixture(
            source,
            settings,
            check_random_state(self.random_state),
            model=model,
            weights_init=weights_init,
            means_init=means_init,
            precisions_init=precisions_init,
            warm_start=warm,
            given=given,
            observer=ObserverGroup(*observers) if observers else None,
            signal=signal,
        )
        extra = self._state_extra(model, result.params)
        if bounds is not None:
            extra["noise_bounds_"] = bounds
        self._set_state(replace(MixtureState.of_fit(result, source.dtype, n_features, feature_names), extra=extra))
        self._warn_about(result, settings)

    def _warn_about(self, result: EMResult, settings: FitSettings) -> None:
        """The warnings a fit raises: dropped, constant, collapsed, not converged."""
        stacklevel = 6
        if result.dropped:
            described = "; ".join(
                f"component {k} at {'initialisation' if it == 0 else f'iteration {it}'}" for k, it in result.dropped
            )
            warnings.warn(
                f"{len(result.dropped)} of {settings.n_components} components received no data "
                f"and were dropped ({described}): their weight is 0 and they predict no rows. "
                "The data support fewer components: use a smaller n_components or another init.",
                EmptyComponentWarning,
                stacklevel=stacklevel,
            )
        if result.constant:
            warnings.warn(constant_features_message(result.constant, settings.reg_covar), ConstantFeatureWarning,
                          stacklevel=stacklevel)
        if result.collapsed:
            which = ", ".join(str(k) for k in result.collapsed)
            warnings.warn(
                f"component {which} collapsed: in some direction its variance is only the regularisation "
                f"(reg_covar={settings.reg_covar:g} of the feature's variance), as happens on rows sharing one "
                "value (duplicates, a discrete feature) or with fewer rows than features. The likelihood of "
                "this fit is inflated; use fewer components, a larger reg_covar, or another init.",
                CollapsedComponentWarning,
                stacklevel=stacklevel,
            )
        if not result.converged and settings.max_iter > 0:
            if result.stopped is not None:
                why = (
                    f"The last iteration's M-step failed, so the fitted parameters are those that entered "
                    f"it: {result.stopped}"
                )
            elif len(result.lower_bounds) < 2:
                why = f"EM ran only {result.n_iter} iteration (max_iter={settings.max_iter}): no change to measure."
            else:
                bounds = result.lower_bounds
                why = (
                    f"After {settings.max_iter} iterations the lower bound still changed by "
                    f"{abs(bounds[-1] - bounds[-2]):.3g} >= tol={settings.tol:g}."
                )
            warnings.warn(f"{SKLEARN_NOT_CONVERGED} {why}", ConvergenceWarning, stacklevel=stacklevel)

    def _warm_start_from(self, settings: FitSettings, n_features: int) -> tuple[MixtureParams, float] | None:
        """The fitted parameters to continue from, or None (with a warning) when they do not fit the settings."""
        fitted_components, fitted_features = np.shape(self.means_)
        expected = settings.structure.covariance_shape(settings.n_components, n_features)
        if (fitted_components, fitted_features) == (settings.n_components, n_features) and np.shape(
            self.precisions_cholesky_
        ) == expected:
            return self._params_from_attributes(), self.lower_bound_
        warnings.warn(
            f"warm_start=True, but the fitted model ({fitted_components} components, {fitted_features} features, "
            f"covariances of shape {np.shape(self.covariances_)}) does not match this fit ({settings.n_components} "
            f"components, {n_features} features, covariance_type={settings.structure.name!r}): "
            f"starting afresh with init_params={settings.init!r}.",
            UserWarning,
            stacklevel=6,
        )
        return None

    # -- the fitted state ------------------------------------------------------------
    def _set_state(self, state: MixtureState) -> None:
        """The one writer of a mixture's fitted attributes (fit, from_parameters, marginal, load)."""
        self._write_fitted(state.attributes(self._structure()))

    def _params_from_attributes(self) -> MixtureParams:
        structure = self._structure()
        means = np.asarray(self.means_, dtype=np.float64)
        n_components, n_features = means.shape
        expected = structure.covariance_shape(n_components, n_features)
        prec_chol = np.asarray(self.precisions_cholesky_, dtype=np.float64)
        if prec_chol.shape != expected:
            raise ValueError(
                f"the fitted precisions_cholesky_ has shape {prec_chol.shape}, but covariance_type="
                f"{self.covariance_type!r} with {n_components} components of {n_features} features needs "
                f"{expected}: covariance_type was changed after fitting; set it back or fit again."
            )
        volume = getattr(self, "noise_volume_", None)
        return MixtureParams(
            weights=np.asarray(self.weights_, dtype=np.float64),
            means=means,
            covariances=np.asarray(self.covariances_, dtype=np.float64),
            precisions_cholesky=prec_chol,
            noise=None if volume is None else -math.log(volume),
        )

    @property
    def noise_proportion_(self) -> float:
        """The noise component's weight (what ``weights_`` leave of 1); 0.0 without a noise component."""
        self._check_fitted()
        return self._params_from_attributes().noise_weight

    def _fit_record(self) -> dict[str, Any]:
        return dict(converged=self.converged_, n_iter=self.n_iter_, lower_bound=self.lower_bound_,
                    lower_bounds=tuple(self.lower_bounds_))

    def _restore_fitted(self, state: dict[str, Any]) -> None:
        from gaussmix._state import mixture_state

        self._checked_settings()  # validates every hyper-parameter
        self._set_state(mixture_state(self, state))

    # -- mclust's view of the covariances ---------------------------------------------
    @property
    def model_name_(self) -> str:
        """mclust's name of the fitted covariance model (``"VVV"`` for ``full``; ``"E"``/``"V"`` on one feature)."""
        from gaussmix.covariance.decomposition import model_name

        self._check_fitted()
        return model_name(self.covariance_type, self.n_features_in_)

    @property
    def covariance_matrices_(self) -> np.ndarray:
        """Every component's covariance as a full matrix, ``(n_components, n_features, n_features)``."""
        self._check_fitted()
        n_components, n_features = np.shape(self.means_)
        full = self._structure().layout.full_covariances(np.asarray(self.covariances_, np.float64),
                                                         n_components, n_features)
        return full.astype(self.means_.dtype)  # a copy: changing it leaves the model as it is

    def _decomposition(self):
        from gaussmix.covariance.decomposition import decompose

        model = self.model_name_
        if model not in ONE_FEATURE_MODELS and self._structure().mclust_name is None:  # not one of mclust's
            model = "VVV"
        return decompose(model, self.covariance_matrices_)

    @property
    def volume_(self):
        """Volumes ``det(Sigma_k)^(1/d)`` (mclust's ``scale``): a float where the model has one, else ``(K,)``.

        With :attr:`shape_` and :attr:`orientation_`, ``Sigma_k = volume_k
        D_k diag(shape_k) D_k'`` (``D_k = orientation_k``; see
        :mod:`gaussmix.covariance.decomposition`).
        """
        return self._decomposition().volume

    @property
    def shape_(self) -> np.ndarray:
        """Shapes (eigenvalues over the volume, product 1, decreasing): ``(d,)`` where shared, else ``(K, d)``."""
        return self._decomposition().shape

    @property
    def orientation_(self) -> np.ndarray:
        """Orientations (eigenvectors as columns): ``(d, d)`` where shared or the identity, else ``(K, d, d)``."""
        return self._decomposition().orientation

    # -- using a fitted model ---------------------------------------------------------
    def _evaluate(self, X, reduction):
        """``reduction`` of the rows of ``X`` under the fitted mixture, in the input's kind."""
        self._check_fitted()
        return self._engine(X).evaluate(
            self, X, self._structure(), self._params_from_attributes(), reduction, device=self.device
        )

    def score_samples(self, X):
        """Log-density ``log p(x)`` of each row under the mixture.

        Returns
        -------
        log_prob : array of shape (n_samples,)
            A NumPy array; a tensor for a tensor, a lazy Dask array for Dask input.
        """
        return self._evaluate(X, LOG_DENSITY)

    def predict(self, X):
        """Most probable component of each row.

        Returns
        -------
        labels : array of shape (n_samples,)
            -1 for rows the noise component owns (with ``noise``). A NumPy
            array; a tensor for a tensor, a lazy Dask array for Dask input.
        """
        labels = self._evaluate(X, LABELS)
        if getattr(self, "noise_volume_", None) is None:
            return labels
        noise = self.n_components
        return labels - (noise + 1) * (labels == noise)

    def predict_proba(self, X):
        """Responsibilities: the posterior probability of each component for each row.

        Returns
        -------
        resp : array of shape (n_samples, n_components) or (n_samples, n_components + 1)
            Rows sum to 1, also for rows so far from every component that
            their densities underflow: those belong to the component nearest
            in Mahalanobis distance (to the noise, with ``noise``). With a
            noise component its column is the last. A NumPy array; a tensor
            for a tensor, a lazy Dask array for Dask input.
        """
        return self._evaluate(X, RESPONSIBILITIES)

    def uncertainty(self, X):
        """mclust's classification uncertainty of each row: ``1 - max_k`` responsibility (0: certain).

        Returns
        -------
        uncertainty : array of shape (n_samples,)
            In the kind of :meth:`predict_proba`'s result.
        """
        return self._evaluate(X, UNCERTAINTY)

    def summary(self, X, sample_weight=None):
        """The fit on ``X`` (its training data) as mclust's ``summary()`` prints it: model, log-likelihood,
        n, df, BIC, ICL and clustering table (:class:`~gaussmix.MixtureSummary`; ``print`` it).

        BIC and ICL are in gaussmix's sign (lower is better); mclust reports their negatives.
        """
        from gaussmix._summary import cluster_sizes, fitted_criteria, mixture_summary

        self._check_fitted()
        engine = self._engine(X)
        data = engine.prepare(engine.check(self, X, reset=False), sample_weight, device=self.device)
        criteria = fitted_criteria(self, data)
        return mixture_summary(self, criteria["log_likelihood"], criteria["n_parameters"], criteria["bic"],
                               criteria["icl"], cluster_sizes(self, data))

    def _total_log_likelihood(self, X) -> tuple[float, int]:
        """Summed log-density of the rows of ``X`` (on its engine, one pass) and their number."""
        self._check_fitted()
        return self._engine(X).log_likelihood(
            self, X, self._structure(), self._params_from_attributes(), device=self.device
        )

    def score(self, X, y=None):
        """Mean log-density of the rows of ``X`` (a float), the mean of :meth:`score_samples`."""
        return self._engine(X).mean(self.score_samples(X))

    def sample(self, n_samples=1):
        """Draw rows from the fitted mixture.

        Rows come grouped by component (component 0 first), as in
        scikit-learn, then the noise's (label -1, uniform over the training
        rows' bounding box) with ``noise``; uses ``random_state``.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            The component each row was drawn from.
        """
        self._check_fitted()
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise ValueError(
                f"Invalid value for 'n_samples': {n_samples!r}. The sampling requires at least one sample."
            )
        params = self._params_from_attributes()
        rng = check_random_state(self.random_state)
        if params.noise is None:
            counts = rng.multinomial(int(n_samples), params.weights / params.weights.sum())
        else:
            shares = np.append(params.weights, params.noise_weight)
            counts = rng.multinomial(int(n_samples), shares / shares.sum())
        X = self._structure().layout.sample(rng, params.means, params.covariances, counts[:params.n_components])
        y = np.repeat(np.arange(params.n_components), counts[:params.n_components])
        if params.noise is not None:  # the noise's rows: uniform over the training rows' bounding box
            low, high = self.noise_bounds_
            X = np.vstack([X, rng.uniform(low, high, size=(int(counts[-1]), low.shape[0]))])
            y = np.concatenate([y, np.full(int(counts[-1]), -1)])
        return X.astype(self.means_.dtype, copy=False), y

    # -- model selection ------------------------------------------------------------
    def _n_parameters(self) -> int:
        """Number of free parameters: covariances, means and weights (none with ``equal_proportions``), and with
        a noise component its weight and, as mclust counts it, the volume of its region (unless given)."""
        self._check_fitted()
        n_components, n_features = np.shape(self.means_)
        cov = self._structure().n_covariance_parameters(n_components, n_features)
        weights = 0 if getattr(self, "equal_proportions", False) else n_components - 1
        noise = 0
        if getattr(self, "noise_volume_", None) is not None:  # the noise's weight, and its volume unless given
            given = getattr(self, "noise_volume", None)
            noise = 1 if isinstance(given, Real) and not isinstance(given, bool) else 2
        return int(cov + n_components * n_features + weights + noise)

    def bic(self, X):
        """Bayesian information criterion on ``X`` (lower is better).

        ``-2 * log-likelihood + n_parameters * log(n_samples)``.
        """
        total, n = self._total_log_likelihood(X)
        return -2.0 * total + self._n_parameters() * math.log(n)

    def aic(self, X):
        """Akaike information criterion on ``X`` (lower is better).

        ``-2 * log-likelihood + 2 * n_parameters``.
        """
        total, _ = self._total_log_likelihood(X)
        return -2.0 * total + 2 * self._n_parameters()

    # -- fitted models without EM -------------------------------------------------------
    @classmethod
    def from_parameters(cls, weights, means, covariances, *, covariance_type="full", feature_names=None, **params):
        """A fitted model with the given parameters, without running EM.

        Use it to score, predict or sample from a known mixture, or to
        continue EM from chosen parameters with ``warm_start=True``.

        Parameters
        ----------
        weights : array-like of shape (n_components,)
            Non-negative, summing to 1.
        means : array-like of shape (n_components, n_features)
        covariances : array-like
            Shaped by ``covariance_type`` (see the class docstring);
            symmetric positive definite.
        covariance_type : str, default="full"
        feature_names : sequence of str, optional
            Sets ``feature_names_in_``.
        **params
            Other hyper-parameters of the new estimator.

        Returns
        -------
        estimator
            With ``n_iter_ == 0`` and ``converged_ == False``: no EM has run.

        Examples
        --------
        >>> from gaussmix import GaussianMixture
        >>> gm = GaussianMixture.from_parameters([0.5, 0.5], [[0.0], [4.0]], [1.0, 1.0],
        ...                                      covariance_type="spherical")
        >>> gm.predict([[0.5], [3.0]])
        array([0, 1])
        """
        means_array = np.asarray(means)
        dtype = means_array.dtype if means_array.dtype in (np.float32, np.float64) else np.float64
        checked = checked_params(get_structure(covariance_type), weights, means, covariances)
        check_features(covariance_type, checked.n_features)
        model = cls(checked.n_components, covariance_type=covariance_type, **params)
        model._checked_settings()
        names = None
        if feature_names is not None:
            names = np.asarray(feature_names, dtype=object)
            if names.shape != (checked.n_features,) or not all(isinstance(n, str) for n in names):
                raise ValueError(f"feature_names must be {checked.n_features} strings, got {feature_names!r}")
        model._set_state(MixtureState(checked, dtype, checked.n_features, names))
        return model

    def marginal(self, features):
        """The fitted mixture of the chosen features only (the others integrated out).

        The marginal of a Gaussian mixture is the mixture of the components'
        marginals, with the same weights; it keeps this model's covariance
        structure and fit record (and a noise component, uniform over the
        training rows' bounding box in those features). Used to draw views
        of data with more than two features. Collapsed components are judged on the training data,
        which a marginal lacks: its ``collapsed_components_`` is empty.

        Parameters
        ----------
        features : sequence of int or str
            Feature indices, or names when the model was fitted with names.

        Returns
        -------
        estimator
            A fitted model over ``len(features)`` features.
        """
        self._check_fitted()
        index = feature_indices(self, features)
        layout = self._structure().layout
        params = self._params_from_attributes()
        covariances = layout.marginal_covariances(params.covariances, index)
        extra, noise = {}, None
        if params.noise is not None:  # the noise over the region's projection: its bounding box in those features
            bounds = np.asarray(self.noise_bounds_, dtype=np.float64)[:, index]
            extra = {"noise_bounds_": bounds}
            noise = -float(np.sum(np.log(np.maximum(bounds[1] - bounds[0], np.finfo(float).tiny))))
            if index == list(range(self.n_features_in_)):
                noise = params.noise
        projected = MixtureParams(params.weights, params.means[:, index], covariances,
                                  layout.precisions_cholesky(covariances), noise)
        names = None
        if hasattr(self, "feature_names_in_"):
            names = np.asarray(self.feature_names_in_)[index]
        model = type(self)(**self.get_params())
        model._set_state(MixtureState(projected, self.means_.dtype, len(index), names, **self._fit_record(),
                                      extra=extra))
        return model


def feature_indices(model, features) -> list[int]:
    """Indices of ``features`` (indices or names) of a fitted model; raises ValueError."""
    names = list(getattr(model, "feature_names_in_", []))
    index = []
    for f in np.atleast_1d(np.asarray(features, dtype=object)).tolist():
        if isinstance(f, str):
            if f not in names:
                raise ValueError(f"unknown feature {f!r}; the model's features are {names or 'unnamed'}.")
            index.append(names.index(f))
        elif isinstance(f, (int, np.integer)) and not isinstance(f, bool) and 0 <= f < model.n_features_in_:
            index.append(int(f))
        else:
            raise ValueError(
                f"features must be indices in [0, {model.n_features_in_}) or feature names, got {f!r}."
            )
    if not index or len(set(index)) != len(index):
        raise ValueError(f"features must name at least one feature, each once; got {features!r}.")
    return index

