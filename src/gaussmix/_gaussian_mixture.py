"""The scikit-learn-compatible estimator :class:`GaussianMixture`."""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import validate_data

from gaussmix._data import ChunkedData
from gaussmix._em import EMResult, constant_features_message
from gaussmix._engines import (
    check_dask,
    check_tensor,
    resolve_engine,
    torch_data,
    torch_namespace,
)
from gaussmix._fit import (
    CallbackObserver,
    FitSettings,
    ObserverGroup,
    VerbosePrinter,
    fit_mixture,
)
from gaussmix._init import INIT_METHODS
from gaussmix._namespace import is_dask_collection, is_torch_tensor
from gaussmix._params import MixtureParams
from gaussmix._persistence import SaveMixin
from gaussmix._validation import (
    check_choice,
    check_fitted,
    check_int,
    check_means_init,
    check_real,
    check_sample_weight,
    check_weights_init,
    unit_exponent,
)
from gaussmix.covariance import get_structure
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

CovarianceType = Literal["full", "tied", "diag", "spherical"]
InitParams = Literal["kmeans", "k-means++", "random", "random_from_data"]


class GaussianMixture(SaveMixin, DensityMixin, BaseEstimator):
    """Gaussian mixture model fitted by Expectation-Maximisation.

    A drop-in for :class:`sklearn.mixture.GaussianMixture` (same parameters,
    methods and fitted attributes) that also takes ``sample_weight``, keeps
    working on degenerate data, gives the same clustering whatever the units
    or scale of the features, and stays accurate in float32.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components.
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
        Structure of the covariance matrices: one general matrix per
        component, one shared general matrix, one diagonal matrix per
        component, or one variance per component. See
        :func:`gaussmix.covariance.available_structures`.
    tol : float, default=1e-3
        EM stops when the lower bound (the weighted mean log-likelihood per
        sample) changes by less than ``tol``.
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance, **in units of each
        feature's variance** in the training data (scikit-learn adds it in
        absolute units). Results therefore do not depend on the scale of the
        features, and on data with unit variance they equal scikit-learn's.
    max_iter : int, default=100
        Maximum number of EM iterations per initialisation.
    n_init : int, default=1
        Number of initialisations; the one with the highest final lower
        bound is kept.
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, default="kmeans"
        How initial responsibilities are chosen: k-means (k-means++ seeding,
        then Lloyd iterations), k-means++ seeds alone, uniformly random
        responsibilities, or randomly chosen distinct rows as seeds. Seeded
        methods assign each row to its nearest seed, so initial covariances
        come from the data. Sample weights are used throughout, and the
        random draws depend on the rows' values, not their order: shuffling
        the rows, or shifting and rescaling features, does not change the
        fit. "random" starts every component near the overall mean; on
        well-separated data EM can stop there within ``tol`` (as in
        scikit-learn), so prefer "kmeans".
    weights_init : array-like of shape (n_components,), default=None
        Initial weights (replace the estimate from ``init_params``).
    means_init : array-like of shape (n_components, n_features), default=None
        Initial means; rows are assigned to the nearest of them to estimate
        the initial covariances (unless ``precisions_init`` is also given).
    precisions_init : array-like, default=None
        Initial precisions (inverse covariances). Shape by ``covariance_type``:
        ``(n_components, n_features, n_features)`` for "full",
        ``(n_features, n_features)`` for "tied", ``(n_components, n_features)``
        for "diag", ``(n_components,)`` for "spherical".
    random_state : int, RandomState instance or None, default=None
        Controls initialisation and :meth:`sample`.
    warm_start : bool, default=False
        If True, each call to ``fit`` after the first continues from the
        fitted parameters (with a single initialisation).
    verbose : int, default=0
        1 prints each initialisation; 2 also prints timings and lower-bound
        changes every ``verbose_interval`` iterations.
    verbose_interval : int, default=10
        Iterations between two verbose messages.
    callback : callable or None, default=None
        Called as ``callback(info)`` with an :class:`~gaussmix.IterationInfo`
        for the starting parameters of each initialisation (iteration 0) and
        after every EM iteration: restart, iteration, lower bound, change and
        the current parameters. Use it to record or display progress
        (:func:`gaussmix.plot.em_progress` does). An exception raised in the
        callback stops the fit and leaves the estimator as it was.
    engine : {"auto", "numpy", "torch", "dask"}, default="auto"
        Where the computations run. ``"auto"`` follows the input: a torch
        tensor runs on the torch engine on the tensor's device, a Dask array
        or dataframe on the Dask engine (one map and one tree reduction per
        EM iteration, on the current Dask scheduler), anything else on NumPy.
        Results for a tensor are tensors on its device, for a Dask array lazy
        Dask arrays; fitted attributes are NumPy arrays on every engine.
    device : str, torch.device or None, default=None
        Torch device for the torch engine (``"cuda"``, ``"cuda:1"``,
        ``"cpu"``); with ``engine="auto"`` it sends NumPy input to torch.
        Data that do not fit in the GPU's memory are streamed from the host
        chunk by chunk.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
        Mixing weights. A component that lost all responsibility during EM
        has weight 0 (see :class:`gaussmix.exceptions.EmptyComponentWarning`).
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray
        Covariances, shaped as ``precisions_init``.
    precisions_ : ndarray
        Inverses of the covariances.
    precisions_cholesky_ : ndarray
        ``U`` with ``U @ U.T == precision`` per component (upper-triangular
        after EM); ``1 / sqrt(variance)`` for "diag" and "spherical".
    converged_ : bool
        Whether the best initialisation reached ``tol`` before ``max_iter``.
    collapsed_components_ : ndarray of int
        Components whose variance in some direction is only the
        regularisation (see :class:`~gaussmix.exceptions.CollapsedComponentWarning`);
        usually empty.
    n_iter_ : int
        EM iterations of the best initialisation.
    lower_bound_ : float
        Lower bound (weighted mean log-likelihood) at the last iteration of
        the best initialisation.
    lower_bounds_ : list of float
        Lower bound at each iteration of the best initialisation.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined only when ``X`` has string column names.

    Notes
    -----
    Degenerate data: a covariance can never become singular while
    ``reg_covar > 0``, so collapsed components (duplicate rows, a constant
    feature, fewer rows than features) do not stop a fit. A component whose
    total responsibility falls to ``1e-12`` of the total weight is dropped: it
    keeps its place in the arrays with weight 0, and an
    :class:`~gaussmix.exceptions.EmptyComponentWarning` says which one and
    when. With ``reg_covar=0`` a singular covariance raises
    :class:`~gaussmix.exceptions.FitError`, a ``ValueError`` that says what
    to change; so does a non-finite log-likelihood.

    Examples
    --------
    >>> from gaussmix import GaussianMixture
    >>> from gaussmix.datasets import load_faithful
    >>> X = load_faithful().data
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> gm.means_.round(1)
    array([[ 4.3, 80. ],
           [ 2. , 54.5]])
    >>> gm.predict([[2.0, 50.0], [4.5, 85.0]])
    array([1, 0])
    >>> gm.predict_proba([[3.0, 70.0]]).round(3)
    array([[0.963, 0.037]])
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: CovarianceType = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: InitParams = "kmeans",
        weights_init: Any = None,
        means_init: Any = None,
        precisions_init: Any = None,
        random_state: Any = None,
        warm_start: bool = False,
        verbose: int = 0,
        verbose_interval: int = 10,
        callback: Any = None,
        engine: str = "auto",
        device: Any = None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.callback = callback
        self.engine = engine
        self.device = device

    # -- fitting ---------------------------------------------------------------
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
        self : GaussianMixture
        """
        self._fit(X, sample_weight)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then return the most probable component of each row of ``X``.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        self._fit(X, sample_weight)
        return self.predict(X)

    def _fit(self, X, sample_weight):
        """Fit and return the data engine; on any error the previous fitted state is restored."""
        saved = {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}
        try:
            return self._fit_unguarded(X, sample_weight)
        except BaseException:
            for key in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
                if key not in saved:
                    delattr(self, key)
            vars(self).update(saved)
            raise

    def _fit_unguarded(self, X, sample_weight):
        settings = self._settings()
        engine = resolve_engine(self.engine, self.device, X)
        data, n_positive = self._fit_data(engine, X, sample_weight)
        n_features = data.n_features
        if n_positive < settings.n_components:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = {settings.n_components}, "
                f"n_samples = {n_positive} (rows with positive weight); use fewer components."
            )
        structure = settings.structure
        weights_init = (
            None if self.weights_init is None else check_weights_init(self.weights_init, settings.n_components)
        )
        means_init = (
            None
            if self.means_init is None
            else check_means_init(self.means_init, settings.n_components, n_features)
        )
        precisions_init = (
            None
            if self.precisions_init is None
            else structure.check_precisions(self.precisions_init, settings.n_components, n_features)
        )
        warm = None
        if self.warm_start and hasattr(self, "converged_"):
            warm = self._warm_start_from(settings, n_features)

        observers = []
        if self.verbose:
            observers.append(VerbosePrinter(self.verbose, self.verbose_interval))
        if self.callback is not None:
            observers.append(CallbackObserver(self.callback))
        observer = ObserverGroup(*observers) if observers else None
        result = fit_mixture(
            data,
            settings,
            check_random_state(self.random_state),
            weights_init=weights_init,
            means_init=means_init,
            precisions_init=precisions_init,
            warm_start=warm,
            observer=observer,
        )
        self._store(result, data.dtype)
        if result.dropped:
            described = "; ".join(
                f"component {k} at {'initialisation' if it == 0 else f'iteration {it}'}"
                for k, it in result.dropped
            )
            warnings.warn(
                f"{len(result.dropped)} of {settings.n_components} components received no data "
                f"and were dropped ({described}): their weight is 0 and they predict no rows. "
                "The data support fewer components: use a smaller n_components or another init.",
                EmptyComponentWarning,
                stacklevel=4,
            )
        if result.constant:
            warnings.warn(constant_features_message(result.constant, settings.reg_covar), ConstantFeatureWarning,
                          stacklevel=4)
        if result.collapsed:
            which = ", ".join(str(k) for k in result.collapsed)
            warnings.warn(
                f"component {which} collapsed: in some direction its variance is only the regularisation "
                f"(reg_covar={settings.reg_covar:g} of the feature's variance), as happens on rows sharing one "
                "value (duplicates, a discrete feature) or with fewer rows than features. The likelihood of "
                "this fit is inflated; use fewer components, a larger reg_covar, or another init.",
                CollapsedComponentWarning,
                stacklevel=4,
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
                why = (
                    f"After {settings.max_iter} iterations the lower bound still changed by "
                    f"{_last_change(result):.3g} >= tol={settings.tol:g}."
                )
            warnings.warn(f"{SKLEARN_NOT_CONVERGED} {why}", ConvergenceWarning, stacklevel=4)
        return data

    def _fit_data(self, engine: str, X, sample_weight):
        """Validated data for ``engine`` and the number of rows of positive weight."""
        if engine == "dask":
            from gaussmix._dask import DaskData, check_weights

            X = check_dask(self, X, reset=True, min_samples=2)
            if sample_weight is None:
                return DaskData(X), X.shape[0]
            weights, n_positive = check_weights(sample_weight, X)
            return DaskData(X, weights), n_positive
        xp = None
        if engine == "torch":
            xp = torch_namespace(self.device, X)
            if is_torch_tensor(X):
                X = check_tensor(self, X, reset=True, min_samples=2)
        elif is_torch_tensor(X):  # engine="numpy" for a tensor
            X = X.detach().cpu().numpy()
        if not is_torch_tensor(X):
            X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        if is_torch_tensor(sample_weight):
            sample_weight = sample_weight.detach().cpu().numpy()
        # Unit weights are not materialised: a weight vector is 8 bytes a row.
        weights = None if sample_weight is None else check_sample_weight(sample_weight, X.shape[0])
        n_positive = X.shape[0] if weights is None else int(np.count_nonzero(weights))
        if weights is not None:
            weights = np.ldexp(weights, unit_exponent(float(np.max(weights))))
        data = ChunkedData(X, weights) if xp is None else torch_data(X, weights, xp)
        return data, n_positive

    def _settings(self) -> FitSettings:
        """Validate the hyper-parameters and bundle those that define the fit."""
        check_int(self.verbose, "verbose", 0)
        check_int(self.verbose_interval, "verbose_interval", 1)
        if self.callback is not None and not callable(self.callback):
            raise InvalidParameterError(
                f"callback must be a callable taking one IterationInfo, or None; got {self.callback!r}."
            )
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise InvalidParameterError(
                f"warm_start must be True or False, got {self.warm_start!r}."
            )
        return FitSettings(
            n_components=check_int(self.n_components, "n_components", 1),
            structure=get_structure(self.covariance_type),
            init=check_choice(self.init_params, "init_params", INIT_METHODS),
            n_init=check_int(self.n_init, "n_init", 1),
            tol=check_real(self.tol, "tol", 0.0),
            reg_covar=check_real(self.reg_covar, "reg_covar", 0.0),
            max_iter=check_int(self.max_iter, "max_iter", 0),
        )

    def _store(self, result: EMResult, dtype) -> None:
        self._set_parameters(result.params, dtype)
        self.converged_ = bool(result.converged)
        self.collapsed_components_ = np.asarray(result.collapsed, dtype=int)
        self.n_iter_ = int(result.n_iter)
        self.lower_bound_ = float(result.lower_bound)
        self.lower_bounds_ = list(result.lower_bounds)

    def _set_parameters(self, params: MixtureParams, dtype) -> None:
        structure = get_structure(self.covariance_type)
        self.weights_ = params.weights.astype(dtype)
        self.means_ = params.means.astype(dtype)
        self.covariances_ = params.covariances.astype(dtype)
        self.precisions_cholesky_ = params.precisions_cholesky.astype(dtype)
        self.precisions_ = structure.precisions(params.precisions_cholesky).astype(dtype)

    # -- using a fitted model --------------------------------------------------
    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "converged_")

    def _check_fitted(self) -> None:
        check_fitted(self, "converged_")

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
            stacklevel=5,
        )
        return None

    def _params_from_attributes(self) -> MixtureParams:
        structure = get_structure(self.covariance_type)
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
        return MixtureParams(
            weights=np.asarray(self.weights_, dtype=np.float64),
            means=means,
            covariances=np.asarray(self.covariances_, dtype=np.float64),
            precisions_cholesky=prec_chol,
        )

    def _prepare(self, X):
        """``(engine data, parameters, output)`` for rows to evaluate.

        ``output(xp, result)`` turns a result of the engine's namespace into
        the input's kind: NumPy for array-likes, a tensor on the input's
        device for a tensor (without leaving the device). ``data`` is None
        for Dask input, which is evaluated lazily block by block.
        """
        self._check_fitted()
        engine = resolve_engine(self.engine, self.device, X)
        if engine == "dask":
            if is_dask_collection(X):
                return None, None, None
            engine = "numpy"  # rows in memory are evaluated in memory, and come back as NumPy
        if engine == "torch":
            xp = torch_namespace(self.device, X)
            if is_torch_tensor(X):
                X = check_tensor(self, X, reset=False)
                device = X.device
                return torch_data(X, None, xp), self._params_from_attributes(), lambda xp, result: result.to(device)
            X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
            return torch_data(X, None, xp), self._params_from_attributes(), _as_numpy
        if is_torch_tensor(X):
            X = X.detach().cpu().numpy()
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return ChunkedData(X), self._params_from_attributes(), _as_numpy

    def _evaluate(self, X, method: str, reduce, limits: bool = False):
        """``reduce(xp, weighted_log_prob)`` over the rows of ``X``, in the input's kind.

        ``limits``: rows too far from every component for their densities to
        be computed get their limiting log-probabilities (for responsibilities).
        """
        data, params, output = self._prepare(X)
        if data is None:
            return self._on_dask(X, method, per_component=method == "predict_proba")
        parts = data.map_log_prob(get_structure(self.covariance_type), params, reduce, limits=limits)
        return output(data.xp, data.xp.concat(parts))

    def _on_dask(self, X, method: str, per_component: bool):
        """``method`` applied lazily to each block of the Dask collection ``X``."""
        X = check_dask(self, X, reset=False)
        twin = self._numpy_twin()
        if per_component:
            return X.map_blocks(
                _apply, twin, method, dtype=np.float64, chunks=(X.chunks[0], (self.weights_.shape[0],))
            )
        return X.map_blocks(_apply, twin, method, drop_axis=1, dtype=np.int64 if method == "predict" else np.float64)

    def _numpy_twin(self) -> GaussianMixture:
        """A copy of the fitted model on the NumPy engine, without callback (small and picklable).

        It has no feature names: it sees the blocks of an array whose columns were already checked.
        """
        twin = GaussianMixture(self.weights_.shape[0], covariance_type=self.covariance_type)
        fitted = {k: v for k, v in vars(self).items()
                  if k.endswith("_") and not k.startswith("_") and k != "feature_names_in_"}
        vars(twin).update(fitted)
        return twin

    def score_samples(self, X):
        """Log-density ``log p(x)`` of each row under the mixture.

        Returns
        -------
        log_prob : array of shape (n_samples,)
            A NumPy array; a tensor for a tensor, a lazy Dask array for Dask input.
        """
        return self._evaluate(X, "score_samples", lambda xp, lp: xp.logsumexp(lp, axis=1))

    def score(self, X, y=None):
        """Mean log-density of the rows of ``X`` (a float)."""
        log_prob = self.score_samples(X)
        if is_dask_collection(log_prob):
            return float(log_prob.mean().compute())
        if is_torch_tensor(log_prob):
            return float(log_prob.mean())
        return float(np.mean(log_prob))

    def predict(self, X):
        """Most probable component of each row.

        Returns
        -------
        labels : array of shape (n_samples,)
            A NumPy array; a tensor for a tensor, a lazy Dask array for Dask input.
        """
        return self._evaluate(X, "predict", lambda xp, lp: xp.argmax(lp, axis=1), limits=True)

    def predict_proba(self, X):
        """Responsibilities: the posterior probability of each component for each row.

        Returns
        -------
        resp : array of shape (n_samples, n_components)
            Rows sum to 1, also for rows so far from every component that
            their densities underflow: those belong to the component nearest
            in Mahalanobis distance. A NumPy array; a tensor for a tensor, a
            lazy Dask array for Dask input.
        """

        def responsibilities(xp, log_prob):
            norm = xp.logsumexp(log_prob, axis=1)
            norm = xp.where(xp.isfinite(norm), norm, 0.0)
            return xp.exp(log_prob - norm[:, None])

        return self._evaluate(X, "predict_proba", responsibilities, limits=True)

    def sample(self, n_samples=1):
        """Draw rows from the fitted mixture.

        Rows come grouped by component (component 0 first), as in
        scikit-learn; uses ``random_state``.

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
        weights = params.weights / params.weights.sum()
        counts = rng.multinomial(int(n_samples), weights)
        structure = get_structure(self.covariance_type)
        X = structure.sample(rng, params.means, params.covariances, counts)
        y = np.repeat(np.arange(params.n_components), counts)
        return X.astype(self.means_.dtype, copy=False), y

    @classmethod
    def from_parameters(
        cls,
        weights,
        means,
        covariances,
        *,
        covariance_type: CovarianceType = "full",
        feature_names=None,
        **params,
    ) -> GaussianMixture:
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
        GaussianMixture
            With ``n_iter_ == 0`` and ``converged_ == False``: no EM has run.

        Examples
        --------
        >>> from gaussmix import GaussianMixture
        >>> gm = GaussianMixture.from_parameters([0.5, 0.5], [[0.0], [4.0]], [1.0, 1.0],
        ...                                      covariance_type="spherical")
        >>> gm.predict([[0.5], [3.0]])
        array([0, 1])
        """
        from gaussmix._derived import from_parameters

        return from_parameters(
            cls, weights, means, covariances, covariance_type=covariance_type, feature_names=feature_names, **params
        )

    def marginal(self, features):
        """The fitted mixture of the chosen features only (the others integrated out).

        The marginal of a Gaussian mixture is the mixture of the components'
        marginals, with the same weights; it keeps this model's covariance
        structure. Used to draw views of data with more than two features.

        Parameters
        ----------
        features : sequence of int or str
            Feature indices, or names when the model was fitted with names.

        Returns
        -------
        GaussianMixture
            A fitted model over ``len(features)`` features.
        """
        from gaussmix._derived import marginal

        return marginal(self, features)

    # -- model selection -----------------------------------------------------
    def _n_parameters(self) -> int:
        """Number of free parameters: covariances, means and weights."""
        self._check_fitted()
        n_components, n_features = np.shape(self.means_)
        cov = get_structure(self.covariance_type).n_covariance_parameters(n_components, n_features)
        return int(cov + n_components * n_features + n_components - 1)

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

    def _total_log_likelihood(self, X) -> tuple[float, int]:
        """Summed log-density of the rows of ``X`` (on its engine) and their number."""
        log_prob = self.score_samples(X)
        total = log_prob.sum()
        if is_dask_collection(total):
            total = total.compute()
        return float(total), int(log_prob.shape[0])


def _as_numpy(xp, result):
    return xp.to_numpy(result)


def _apply(block, model, method):
    return getattr(model, method)(block)


def _last_change(result: EMResult) -> float:
    bounds = result.lower_bounds
    return abs(bounds[-1] - bounds[-2]) if len(bounds) >= 2 else math.inf
