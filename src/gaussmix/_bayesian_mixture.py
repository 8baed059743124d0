"""The scikit-learn-compatible estimator :class:`BayesianGaussianMixture` (variational inference)."""

from __future__ import annotations

import math
from dataclasses import replace
from numbers import Real
from typing import Any

import numpy as np

from gaussmix._mixture import BaseMixture
from gaussmix._state import MIXTURE_ATTRIBUTES, mixture_state
from gaussmix._validation import check_choice, check_init_method, check_int, check_real, finite_array
from gaussmix.covariance import SCIKIT_LEARN_STRUCTURES, get_structure
from gaussmix.em.fit import FitSettings
from gaussmix.em.params import MixtureParams
from gaussmix.em.scale import DataScale
from gaussmix.em.variational import WEIGHT_PRIORS, Variational, VariationalPosterior, VariationalPrior
from gaussmix.exceptions import InvalidParameterError, ModelFileError

#: The initialisations a variational fit takes (scikit-learn's, mclust's hierarchical one, or a given partition).
VARIATIONAL_INITS = ("kmeans", "k-means++", "random", "random_from_data", "hc")

#: The fitted attributes beyond a Gaussian mixture's: the resolved prior and the posterior.
POSTERIOR_ATTRIBUTES = (
    "weight_concentration_prior_", "weight_concentration_", "mean_precision_prior_", "mean_precision_",
    "mean_prior_", "degrees_of_freedom_prior_", "degrees_of_freedom_", "covariance_prior_",
)


class BayesianGaussianMixture(BaseMixture):
    """Variational Bayesian estimation of a Gaussian mixture: a drop-in for scikit-learn's.

    The same parameters, attributes and behaviour as
    :class:`sklearn.mixture.BayesianGaussianMixture`: a Dirichlet process
    (stick-breaking) or Dirichlet distribution prior on the weights and a
    Gaussian-Wishart prior on each component's mean and precision, fitted by
    variational EM on the same summed statistics and engines as
    :class:`GaussianMixture` (so it takes ``sample_weight``, float32, torch
    tensors and Dask arrays). With a Dirichlet process the components the
    data do not need get weights near zero, so ``n_components`` is an upper
    bound rather than a choice.

    Parameters
    ----------
    n_components : int, default=1
        The most components the posterior may use.
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
    tol : float, default=1e-3
        EM stops when the lower bound (the evidence lower bound, a total over
        the rows as scikit-learn's) changes by less than ``tol``.
    reg_covar : float, default=1e-6
        Added to the diagonal of each component's covariance statistic, in
        units of each feature's variance (scikit-learn's in absolute units:
        the same on data of unit variance).
    max_iter : int, default=100
    n_init : int, default=1
        Initialisations; the one of the highest lower bound is kept.
    init_params : {"kmeans", "k-means++", "random", "random_from_data", "hc"} or array, default="kmeans"
        How the responsibilities start (see :class:`GaussianMixture`).
    weight_concentration_prior_type : {"dirichlet_process", "dirichlet_distribution"}, default="dirichlet_process"
    weight_concentration_prior : float or None, default=None
        ``gamma_0`` of the Dirichlet process or ``alpha_0`` of the Dirichlet
        distribution (``1 / n_components`` when None): smaller values put the
        weight on fewer components.
    mean_precision_prior : float or None, default=None
        ``beta_0``, the prior's precision of the means in units of the
        components' precision (1 when None).
    mean_prior : array of shape (n_features,) or None, default=None
        The prior mean of the means (the data mean when None).
    degrees_of_freedom_prior : float or None, default=None
        ``nu_0`` of the Wishart prior, above ``n_features - 1``
        (``n_features`` when None).
    covariance_prior : float or array or None, default=None
        The prior of the covariance (the Wishart's scale matrix inverted):
        (d, d) for "full" and "tied", (d,) for "diag", a number for
        "spherical"; the data's unbiased covariance (its diagonal, its mean
        variance) when None.
    random_state, warm_start, verbose, verbose_interval, callback, engine, device
        As :class:`GaussianMixture`.

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_ :
        The posterior's expected weights, its means ``m_k``, and the
        covariances ``W_k^-1 / nu_k`` (precisions: their inverses) as
        scikit-learn defines them.
    weight_concentration_prior_, mean_precision_prior_, mean_prior_, degrees_of_freedom_prior_, covariance_prior_ :
        The prior as resolved from the parameters and the data.
    weight_concentration_ : ndarray of shape (n_components,) or tuple of two
        The Dirichlet distribution's parameters, or the Dirichlet process's
        Beta variables' two parameters.
    mean_precision_ : ndarray of shape (n_components,)
    degrees_of_freedom_ : ndarray of shape (n_components,), or float for "tied"
    converged_, n_iter_, lower_bound_, lower_bounds_, n_features_in_, feature_names_in_ :
        As :class:`GaussianMixture` (the bounds are totals, as scikit-learn's).

    Examples
    --------
    >>> import numpy as np
    >>> from gaussmix import BayesianGaussianMixture
    >>> rng = np.random.RandomState(0)
    >>> X = np.vstack([rng.normal(0, 1, (200, 2)), rng.normal(6, 1, (200, 2))])
    >>> bgm = BayesianGaussianMixture(n_components=6, weight_concentration_prior=0.01, random_state=0).fit(X)
    >>> int(np.sum(bgm.weights_ > 0.05))
    2
    """

    _fitted_attributes = MIXTURE_ATTRIBUTES + POSTERIOR_ATTRIBUTES

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: Any = "kmeans",
        weight_concentration_prior_type: str = "dirichlet_process",
        weight_concentration_prior: float | None = None,
        mean_precision_prior: float | None = None,
        mean_prior: Any = None,
        degrees_of_freedom_prior: float | None = None,
        covariance_prior: Any = None,
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
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.callback = callback
        self.engine = engine
        self.device = device

    # the hooks that make a Gaussian mixture estimator variational
    weights_init = means_init = precisions_init = None

    def _checked_settings(self) -> FitSettings:
        self._check_reporting("warm_start")
        check_choice(self.covariance_type, "covariance_type", SCIKIT_LEARN_STRUCTURES)
        check_choice(self.weight_concentration_prior_type, "weight_concentration_prior_type", WEIGHT_PRIORS)
        for name in ("weight_concentration_prior", "mean_precision_prior"):
            value = getattr(self, name)
            if value is not None and check_real(value, name, 0.0) <= 0:
                raise InvalidParameterError(f"{name} must be a number > 0 or None, got {value!r}.")
        if self.degrees_of_freedom_prior is not None:
            check_real(self.degrees_of_freedom_prior, "degrees_of_freedom_prior", -math.inf)
        return FitSettings(
            n_components=check_int(self.n_components, "n_components", 1),
            structure=get_structure(self.covariance_type),
            init=check_init_method(self.init_params, VARIATIONAL_INITS),
            n_init=check_int(self.n_init, "n_init", 1),
            tol=check_real(self.tol, "tol", 0.0),
            reg_covar=check_real(self.reg_covar, "reg_covar", 0.0),
            max_iter=check_int(self.max_iter, "max_iter", 0),
        )

    def _em_model(self, data, settings: FitSettings) -> Variational:
        source = data.source
        row_weight = math.ldexp(1.0, data.weight_exponent)
        return Variational(settings.structure, DataScale.of(source, settings.reg_covar),
                           self._resolved_prior(source, row_weight), row_weight)

    def _resolved_prior(self, source, row_weight: float) -> VariationalPrior:
        """The prior's hyper-parameters for these data (scikit-learn's defaults where None)."""
        from gaussmix.em.prior import covariance_form, data_covariance

        d = source.n_features
        mean = (source.feature_moments()[0] if self.mean_prior is None
                else _shaped(self.mean_prior, (d,), "mean_prior"))
        if self.degrees_of_freedom_prior is None:
            dof = float(d)
        elif self.degrees_of_freedom_prior > d - 1.0:
            dof = float(self.degrees_of_freedom_prior)
        else:
            raise InvalidParameterError(
                f"The parameter 'degrees_of_freedom_prior' should be greater than {d - 1}, but got "
                f"{self.degrees_of_freedom_prior:.3f}."
            )
        name = self.covariance_type
        form = covariance_form(get_structure(name), d)  # a matrix, a variance per feature, or one
        if self.covariance_prior is None:
            covariance = np.atleast_2d(data_covariance(source, row_weight))
            if form == 1:
                covariance = np.diag(covariance).copy()
            elif form == 0:
                covariance = np.asarray(float(np.mean(np.diag(covariance))))
        elif form == 2:
            covariance = _shaped(self.covariance_prior, (d, d), f"{name} covariance_prior")
            if not np.allclose(covariance, covariance.T) or np.min(np.linalg.eigvalsh(covariance)) <= 0:
                raise InvalidParameterError(f"'{name} covariance_prior' should be symmetric, positive-definite")
        elif form == 1:
            covariance = _shaped(self.covariance_prior, (d,), f"{name} covariance_prior")
            if np.any(covariance <= 0):
                raise InvalidParameterError(f"'{name} covariance_prior' should be positive")
        else:
            if isinstance(self.covariance_prior, bool) or not isinstance(self.covariance_prior, Real):
                raise InvalidParameterError(f"'{name} covariance_prior' must be a number, got "
                                            f"{self.covariance_prior!r}")
            covariance = np.asarray(float(self.covariance_prior))
            if covariance <= 0:
                raise InvalidParameterError(f"'{name} covariance_prior' should be positive")
        return VariationalPrior(
            process=self.weight_concentration_prior_type == "dirichlet_process",
            weight_concentration=(1.0 / self.n_components if self.weight_concentration_prior is None
                                  else float(self.weight_concentration_prior)),
            mean_precision=1.0 if self.mean_precision_prior is None else float(self.mean_precision_prior),
            mean=np.asarray(mean, dtype=np.float64), dof=dof, covariance=covariance,
        )

    def _state_extra(self, model: Variational, params: MixtureParams) -> dict[str, Any]:
        prior, posterior = model.prior, params.posterior
        dtype = np.float64
        concentration = posterior.weight_concentration
        return {
            "weight_concentration_prior_": prior.weight_concentration,
            "weight_concentration_": (tuple(np.asarray(c, dtype) for c in concentration) if posterior.process
                                      else np.asarray(concentration, dtype)),
            "mean_precision_prior_": prior.mean_precision,
            "mean_precision_": np.asarray(posterior.mean_precision, dtype),
            "mean_prior_": np.asarray(prior.mean, dtype),
            "degrees_of_freedom_prior_": prior.dof,
            "degrees_of_freedom_": (float(posterior.dof) if np.ndim(posterior.dof) == 0
                                    else np.asarray(posterior.dof, dtype)),
            "covariance_prior_": float(prior.covariance) if np.ndim(prior.covariance) == 0 else prior.covariance,
        }

    def _params_from_attributes(self) -> MixtureParams:
        params = super()._params_from_attributes()
        concentration = self.weight_concentration_
        process = isinstance(concentration, tuple)
        posterior = VariationalPosterior(
            tuple(np.asarray(c, np.float64) for c in concentration) if process
            else np.asarray(concentration, np.float64),
            np.asarray(self.mean_precision_, np.float64), self.degrees_of_freedom_, process)
        return replace(params, posterior=posterior)

    # scikit-learn's two private steps of a fit, which its own tests call to see the posterior a start makes
    def _check_parameters(self, X) -> None:
        self._checked_settings()

    def _initialize_parameters(self, X, random_state) -> None:
        """The posterior the start (``init_params`` drawn with ``random_state``) makes, before any iteration."""
        import warnings

        from sklearn.base import clone

        start = clone(self).set_params(max_iter=0, n_init=1, random_state=random_state, warm_start=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start.fit(X)
        self._write_fitted({name: value for name, value in vars(start).items()
                            if name.endswith("_") and not name.startswith("_")})

    def marginal(self, features):
        """The posterior's expected Gaussian mixture (``weights_``, ``means_``, ``covariances_``) over the
        chosen features, the others integrated out: a fitted :class:`~gaussmix.GaussianMixture` (for views of
        the fit, which draw Gaussian densities)."""
        from gaussmix._gaussian_mixture import GaussianMixture
        from gaussmix._mixture import feature_indices

        self._check_fitted()
        index = feature_indices(self, features)
        covariances = self._structure().layout.marginal_covariances(np.asarray(self.covariances_, np.float64), index)
        names = None if not hasattr(self, "feature_names_in_") else list(np.asarray(self.feature_names_in_)[index])
        return GaussianMixture.from_parameters(
            np.asarray(self.weights_, np.float64), np.asarray(self.means_, np.float64)[:, index], covariances,
            covariance_type=self.covariance_type, feature_names=names)

    def _restore_fitted(self, state: dict[str, Any]) -> None:
        self._checked_settings()
        missing = [name for name in POSTERIOR_ATTRIBUTES if name not in state]
        if missing:
            raise ModelFileError(f"BayesianGaussianMixture state lacks {', '.join(missing)}")
        base = mixture_state(self, {**state, "weights_": np.asarray(state["weights_"])})
        extra = {name: state[name] for name in POSTERIOR_ATTRIBUTES}
        concentration = extra["weight_concentration_"]
        if isinstance(concentration, list):
            extra["weight_concentration_"] = tuple(concentration)
        self._set_state(replace(base, extra=extra))


def _shaped(value: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    try:
        array = finite_array(value, name)
    except ValueError as exc:
        raise InvalidParameterError(str(exc)) from None
    if array.shape != shape:
        raise InvalidParameterError(f"The parameter '{name}' should have the shape of {shape}, but got "
                                    f"{array.shape}")
    return array
