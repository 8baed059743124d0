"""Choosing the number of components and the covariance structure."""

from __future__ import annotations

import itertools
import math
import sys
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sklearn.base import DensityMixin, clone
from sklearn.utils import check_random_state

from gaussmix._base import GaussmixEstimator
from gaussmix._mixture import BaseMixture
from gaussmix._summary import MixtureSummary, cluster_sizes, fitted_criteria, mixture_summary
from gaussmix._tables import as_records, as_table
from gaussmix._validation import (
    check_choice,
    check_int,
    check_prior,
    check_real,
    check_sample_weight,
)
from gaussmix.covariance import get_structure, mclust_models
from gaussmix.covariance.decomposition import model_name
from gaussmix.em.kernels import LOG_DENSITY
from gaussmix.em.scale import DataScale, constant_features_message
from gaussmix.engines import FitData, resolve_engine
from gaussmix.exceptions import (
    ConstantFeatureWarning,
    FitError,
    InvalidParameterError,
    SelectionBoundaryWarning,
)

Criterion = Literal["bic", "aic", "icl", "cv"]
CRITERIA = ("bic", "aic", "icl", "cv")
#: Most component counts a selector accepts (each one is a fit per structure).
MAX_CANDIDATES = 10_000
DEFAULT_COMPONENTS = tuple(range(1, 10))
TABLE_COLUMNS = (
    "n_components", "covariance_type", "log_likelihood", "n_parameters", "bic", "aic", "icl",
    "cv_log_likelihood", "cv_std", "converged", "n_iter", "fit_time", "error",
)


def information_criteria(model, X, weights) -> dict[str, float]:
    """Log-likelihood, free parameters, BIC, AIC and ICL of a fitted model on weighted rows.

    All criteria are "lower is better". ICL is BIC plus twice the entropy of
    the hard classification, ``-2 sum_i w_i log max_k z_ik`` (mclust's
    definition, with the sign flipped to match scikit-learn's BIC).
    """
    engine = model._engine(X)
    return fitted_criteria(model, engine.prepare(engine.check(model, X, reset=False), weights, device=model.device))


def _fit_candidate(data: FitData, template, n_components, covariance_type, params, folds):
    """Fit one candidate (and its cross-validation folds) on prepared data; never raises for a failed fit."""
    record: dict[str, Any] = dict.fromkeys(TABLE_COLUMNS, math.nan)
    record.update(n_components=int(n_components), covariance_type=covariance_type, converged=False, n_iter=0,
                  error=None)
    start = time.perf_counter()
    model = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = clone(template).set_params(n_components=n_components, covariance_type=covariance_type, **params)
            model._fit_on(data)
            if model.collapsed_components_.size:
                which = ", ".join(str(k) for k in model.collapsed_components_)
                raise FitError(
                    f"degenerate fit: component {which} collapsed onto rows sharing one value in some "
                    "direction, so its likelihood is inflated"
                )
            record.update(fitted_criteria(model, data))
            record.update(converged=bool(model.converged_), n_iter=int(model.n_iter_))
            if folds:
                held_out = []
                for train, test in folds.splits:
                    fold = clone(model)
                    fold._fit_on(folds.prepare(data, train))
                    scored = folds.prepare(data, test).source
                    total = scored.weighted_sum(fold._structure(), fold._params_from_attributes(), LOG_DENSITY)
                    held_out.append(float(total) / scored.total_weight)
                record.update(cv_log_likelihood=float(np.mean(held_out)), cv_std=float(np.std(held_out)))
    except ValueError as exc:  # FitError, too few rows, singular covariances ...
        record["error"] = " ".join(str(exc).split())
        model = None
        for key in ("log_likelihood", "n_parameters", "bic", "aic", "icl", "cv_log_likelihood", "cv_std"):
            record[key] = math.nan
    record["fit_time"] = time.perf_counter() - start
    return record, model


class GaussianMixtureSelector(DensityMixin, GaussmixEstimator):
    """Choose the number of components and the covariance structure of a Gaussian mixture.

    Fits every candidate of a grid (``n_components`` x ``covariance_types``)
    and keeps the best by an information criterion or by held-out
    log-likelihood. The selector is itself a density estimator: it predicts,
    scores and samples with the chosen model, so it fits in pipelines.

    Parameters
    ----------
    estimator : mixture estimator or None, default=None
        The template every candidate is cloned from (``None``: a
        :class:`GaussianMixture`); its other hyper-parameters are kept, and
        the selector's ``n_init``, ``init_params``, ``tol``, ``reg_covar``,
        ``max_iter``, ``random_state``, ``engine`` and ``device`` replace
        the template's. Any mixture estimator of gaussmix works.
    n_components : iterable of int or int, default=(1, ..., 9)
        Component counts to try (an integer: that count only, as mclust's ``G``).
    covariance_types : iterable of str or None, default=None
        Structures to try (any registered name: scikit-learn's or mclust's);
        ``None`` tries mclust's fourteen models, as ``Mclust`` does: "EII",
        "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV",
        "VEV", "EVV", "VVV" ("E" and "V" for data of one feature). The
        results name each candidate as given here.
    criterion : {"bic", "aic", "icl", "cv"}, default="bic"
        How candidates are ranked: BIC, AIC or ICL on the training data
        (lower is better: mclust reports the negatives of BIC and ICL, higher
        is better there), or the mean held-out log-likelihood per row over
        ``cv`` folds ("cv", higher is better; a likelihood criterion such as
        BIC has no place inside cross-validation). Ties go to the candidate
        with fewer parameters.
    cv : int or cross-validation splitter, default=5
        Folds for ``criterion="cv"`` (shuffled with ``random_state``).
    n_init : int, default=3
        Starts per candidate (the best is kept). Selection compares the best
        fit of each candidate, so a candidate stuck in a poor local optimum
        would be misjudged; a few starts make the choice reliable.
    init_params : str, default="emem"
        How every candidate starts (see :class:`GaussianMixture`). The default,
        short-EM starts refined by split-and-merge moves and random swaps,
        reaches the best known optimum far more often than k-means starts
        (76% of the benchmark's cells against 36% with ``n_init=3``), at
        about eight times the cost of ``"kmeans"`` with the same ``n_init``
        (``benchmarks/README.md``).
    tol, reg_covar, max_iter : see :class:`GaussianMixture`
        The same for every candidate.
    prior : None, "default" or dict, default=None
        A conjugate prior for every candidate (see :class:`GaussianMixture`;
        mclust's ``Mclust(X, prior = priorControl())`` with ``"default"``):
        each is then fitted by maximum a posteriori and its BIC is the
        log-likelihood's at the posterior mode. ``None`` keeps the
        ``estimator``'s own.
    noise : None, bool or array of bool of shape (n_samples,), default=None
        Search with a uniform noise component (see :class:`GaussianMixture`;
        mclust's ``Mclust(X, initialization = list(noise = ...))``): every
        candidate starts from the same first guess of the noise rows and
        has the noise beside its Gaussians. ``None`` keeps the
        ``estimator``'s own.
    random_state : int, RandomState instance or None, default=None
        Every candidate is fitted with the same integer seed (drawn once from
        a RandomState instance), so results do not depend on ``n_jobs`` or on
        which candidates are in the grid.
    n_jobs : int or None, default=None
        Candidates fitted in parallel with joblib (``None``: one at a time,
        ``-1``: all cores).
    verbose : int, default=0
        1 prints a line to standard error as each candidate finishes.
    engine, device : see :class:`GaussianMixture`
        Where every candidate is fitted. With ``"auto"`` a torch tensor is
        fitted on its device and a Dask collection on the Dask engine (then
        ``criterion`` must be an information criterion: folds of Dask data
        are not drawn).

    Attributes
    ----------
    best_estimator_ : GaussianMixture
        The chosen model, fitted on all the data.
    best_params_ : dict
        Its ``n_components`` and ``covariance_type``.
    best_index_ : int
        Its row in ``results_``.
    cluster_sizes_ : ndarray of shape (n_components,)
        The training rows (their weight) each component of the chosen model
        classifies: the clustering table of :meth:`summary`.
    results_ : pandas.DataFrame or list of dict
        One row per candidate with ``n_components``, ``covariance_type``,
        ``log_likelihood``, ``n_parameters``, ``bic``, ``aic``, ``icl``,
        ``cv_log_likelihood`` and ``cv_std`` (with ``criterion="cv"``),
        ``converged``, ``n_iter``, ``fit_time`` (seconds) and ``error`` (None,
        or why the candidate could not be fitted: its numbers are then NaN,
        as mclust reports NA). A DataFrame when pandas is installed.
    n_features_in_ : int
    feature_names_in_ : ndarray of str

    Examples
    --------
    >>> from gaussmix import GaussianMixtureSelector
    >>> from gaussmix.datasets import load_faithful
    >>> X = load_faithful().data
    >>> selector = GaussianMixtureSelector(n_components=range(1, 5), n_init=5, random_state=0).fit(X)
    >>> selector.best_params_
    {'n_components': 3, 'covariance_type': 'EEE'}
    """

    _fitted_attributes = ("best_estimator_", "best_params_", "best_index_", "results_")
    #: not in model files written before it was kept
    _optional_attributes = ("cluster_sizes_",)

    def __init__(
        self,
        n_components: Iterable[int] = DEFAULT_COMPONENTS,
        *,
        estimator: Any = None,
        covariance_types: Iterable[str] | None = None,
        criterion: Criterion = "bic",
        cv: Any = 5,
        n_init: int = 3,
        init_params: str = "emem",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        prior: Any = None,
        noise: Any = None,
        random_state: Any = None,
        n_jobs: int | None = None,
        verbose: int = 0,
        engine: str = "auto",
        device: Any = None,
    ):
        self.n_components = n_components
        self.estimator = estimator
        self.covariance_types = covariance_types
        self.criterion = criterion
        self.cv = cv
        self.n_init = n_init
        self.init_params = init_params
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.prior = prior
        self.noise = noise
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.engine = engine
        self.device = device

    def _candidates(self, n_features: int) -> list[tuple[int, str]]:
        requested = self.n_components
        if isinstance(requested, (int, np.integer)) and not isinstance(requested, bool):
            requested = [requested]
        if isinstance(requested, str) or not hasattr(requested, "__iter__"):
            raise InvalidParameterError(
                f"n_components must be an integer or an iterable of integers >= 1, got {self.n_components!r}."
            )
        counts = list(itertools.islice(iter(requested), MAX_CANDIDATES + 1))
        if len(counts) > MAX_CANDIDATES:
            raise InvalidParameterError(
                f"n_components lists more than {MAX_CANDIDATES:,} component counts; each one is a fit per "
                "structure: give a smaller range, such as range(1, 10)."
            )
        counts = [check_int(k, "n_components", 1) for k in counts]
        if not counts:
            raise InvalidParameterError("n_components must contain at least one component count.")
        types = list(mclust_models(n_features) if self.covariance_types is None else self.covariance_types)
        if isinstance(self.covariance_types, str):
            types = [self.covariance_types]
        if not types:
            raise InvalidParameterError("covariance_types must contain at least one structure.")
        named: dict[str, str] = {}  # each structure once, under the first of its names given
        for name in types:
            named.setdefault(get_structure(name).name, name)  # raises for unknown names, listing the valid ones
        return [(k, t) for t in named.values() for k in dict.fromkeys(counts)]

    def _check_features(self, data: FitData) -> None:
        """Refuse data out of float range and warn about constant features once, before any candidate.

        The moments are computed once here and kept by the data source for every candidate.
        """
        scale = DataScale.of(data.source, check_real(self.reg_covar, "reg_covar", 0.0))
        constant = tuple(int(j) for j in np.flatnonzero(~scale.varies))
        if constant:
            warnings.warn(constant_features_message(constant, scale.reg_covar), ConstantFeatureWarning, stacklevel=6)

    @staticmethod
    def _check_room(candidates: list[tuple[int, str]], n_positive: int) -> None:
        """Refuse up front a grid in which no count has enough rows (every component needs one)."""
        smallest = min(k for k, _ in candidates)
        if smallest > n_positive:
            raise ValueError(
                f"Expected n_samples >= n_components but every candidate has more components (at least "
                f"{smallest:,}) than X has rows with positive weight ({n_positive:,}); use counts up to "
                f"{n_positive:,}."
            )

    def _folds(self, data: FitData, sample_weight, seed) -> _Folds | None:
        """The cross-validation folds: the same row indices for every candidate."""
        if self.criterion != "cv":
            return None
        from sklearn.model_selection import KFold, check_cv

        rows = data.rows
        splitter = KFold(self.cv, shuffle=True, random_state=seed) if isinstance(self.cv, int) else check_cv(self.cv)
        weights = check_sample_weight(sample_weight, rows.shape[0])
        return _Folds(weights, tuple(splitter.split(rows)))

    def fit(self, X, y=None, sample_weight=None):
        """Fit every candidate and keep the best.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : Ignored
        sample_weight : array-like of shape (n_samples,), optional
            Used by every fit; the criteria then use the weighted
            log-likelihood and the total weight as the number of rows.

        Returns
        -------
        self
        """
        self._guarded(self._fit, X, sample_weight)
        return self

    def _fit(self, X, sample_weight) -> None:
        outcomes, data = self._search(X, sample_weight)
        records = [record for record, _ in outcomes]
        scored = [i for i, (record, model) in enumerate(outcomes) if model is not None]
        if not scored:
            reasons = "; ".join(dict.fromkeys(r["error"] for r in records))
            raise FitError(f"no candidate could be fitted: {reasons}")
        best = min(scored, key=_ranking(records, self.criterion))
        fitted = {
            "best_estimator_": outcomes[best][1],
            "best_params_": {
                "n_components": records[best]["n_components"],
                "covariance_type": records[best]["covariance_type"],
            },
            "best_index_": best,
            "results_": as_table(records, TABLE_COLUMNS),
            "cluster_sizes_": cluster_sizes(outcomes[best][1], data),
            "n_features_in_": self.n_features_in_,
        }
        if hasattr(self, "feature_names_in_"):
            fitted["feature_names_in_"] = self.feature_names_in_
        self._write_fitted(fitted)
        self._warn_at_the_edge(records, scored)

    def _warn_at_the_edge(self, records: list[dict], scored: list[int]) -> None:
        """Warn when the chosen count is the largest tried: more components might be better still."""
        tried = sorted({records[i]["n_components"] for i in scored})
        best = self.best_params_["n_components"]
        if len(tried) > 1 and best == tried[-1]:
            warnings.warn(
                f"the best model by {self.criterion.upper()} has {best} components, the largest number tried; "
                "more components might fit better: extend n_components beyond "
                f"{best} (as mclust users check that the BIC curve has turned).",
                SelectionBoundaryWarning,
                stacklevel=5,
            )

    def _search(self, X, sample_weight):
        """Validate, then fit every candidate: a list of (record, fitted model or None)."""
        check_choice(self.criterion, "criterion", CRITERIA)
        if not isinstance(self.init_params, str):
            raise InvalidParameterError(
                "init_params must name a method for a selector (its candidates have different numbers of "
                f"components, so one partition cannot start them all); got {type(self.init_params).__name__}."
            )
        check_int(self.verbose, "verbose", 0)
        self._candidates(2)  # the grid's values are checked before the data
        template = self._template()
        if self.prior is not None:
            check_prior(self.prior)
        for name in ("prior", "noise"):
            if getattr(self, name) is not None and name not in template.get_params(deep=False):
                raise InvalidParameterError(
                    f"{name} is given but the estimator {type(template).__name__} takes no {name}; leave "
                    f"{name}=None."
                )
        engine = resolve_engine(self.engine, self.device, X)
        if self.criterion == "cv" and not engine.indexable:
            raise InvalidParameterError(
                f"criterion='cv' is not available for {engine.title} data; use 'bic', 'aic' or 'icl'."
            )
        data = engine.fit_data(self, X, sample_weight, device=self.device)
        candidates = self._candidates(data.source.n_features)
        self._check_room(candidates, data.n_positive)
        self._check_features(data)
        seed = self.random_state
        if not (seed is None or isinstance(seed, (int, np.integer))):
            seed = int(check_random_state(seed).randint(np.iinfo(np.int32).max))
        params = dict(n_init=self.n_init, init_params=self.init_params, tol=self.tol, reg_covar=self.reg_covar,
                      max_iter=self.max_iter, random_state=seed, engine=engine.name, device=data.device)
        for name in ("prior", "noise"):
            if getattr(self, name) is not None:
                params[name] = getattr(self, name)
        possible = [(k, t) for k, t in candidates if k <= data.n_positive]
        folds = self._folds(data, sample_weight, seed)
        outcomes = dict(zip(possible, self._run(data, template, possible, params, folds)))
        return [outcomes.get((k, t)) or (_too_many(k, t, data.n_positive), None) for k, t in candidates], data

    def _template(self):
        if self.estimator is None:
            from gaussmix._gaussian_mixture import GaussianMixture

            return GaussianMixture()
        if not isinstance(self.estimator, BaseMixture):
            raise InvalidParameterError(
                f"estimator must be a gaussmix mixture estimator such as GaussianMixture(), got {self.estimator!r}."
            )
        return self.estimator

    def _run(self, data, template, candidates, params, folds):
        total = len(candidates)
        report = (lambda record, done: _print_progress(record, done, total)) if self.verbose else None
        if self.n_jobs in (None, 1):
            outcomes = []
            for k, t in candidates:
                outcomes.append(_fit_candidate(data, template, k, t, params, folds))
                if report:
                    report(outcomes[-1][0], len(outcomes))
            return outcomes
        from joblib import Parallel, delayed

        tasks = (delayed(_fit_candidate)(data, template, k, t, params, folds) for k, t in candidates)
        outcomes = []
        for outcome in Parallel(n_jobs=self.n_jobs, return_as="generator")(tasks):
            outcomes.append(outcome)
            if report:
                report(outcome[0], len(outcomes))
        return outcomes

    # -- the chosen model ------------------------------------------------------
    def _restore_fitted(self, state: dict[str, Any]) -> None:
        from gaussmix._loaded_state import selector_state

        self._write_fitted(selector_state(self, state, TABLE_COLUMNS))

    def _best(self):
        self._check_fitted()
        return self.best_estimator_

    def _checked(self, X):
        """``X`` checked against the features the selector was fitted on (in its own kind)."""
        self._best()
        return resolve_engine(self.engine, self.device, X).check(self, X, reset=False)

    def predict(self, X):
        """Most probable component of each row under the chosen model."""
        return self._best().predict(self._checked(X))

    def predict_proba(self, X):
        """Responsibilities under the chosen model."""
        return self._best().predict_proba(self._checked(X))

    def score_samples(self, X):
        """Log-density of each row under the chosen model."""
        return self._best().score_samples(self._checked(X))

    def score(self, X, y=None):
        """Mean log-density of the rows under the chosen model."""
        return self._best().score(self._checked(X))

    def sample(self, n_samples=1):
        """Draw rows from the chosen model (see :meth:`GaussianMixture.sample`)."""
        return self._best().sample(n_samples)

    def uncertainty(self, X):
        """``1 - max_k`` responsibility of each row under the chosen model (mclust's ``uncertainty``)."""
        return self._best().uncertainty(self._checked(X))

    def summary(self) -> MixtureSummary:
        """The chosen model as mclust's ``summary()`` prints it: model, log-likelihood, n, df, BIC, ICL and
        the clustering table of the training rows, with the best three candidates; ``print`` it.

        BIC and ICL are in gaussmix's sign (lower is better); mclust reports their negatives.
        """
        best = self._best()
        if not hasattr(self, "cluster_sizes_"):
            raise ValueError("this selector's model file does not hold its clustering table (cluster_sizes_); "
                             "fit it again for a summary.")
        table = as_records(self.results_)
        row = table[self.best_index_]
        key = _column(self.criterion)
        valid = sorted((i for i, r in enumerate(table) if r["error"] is None and math.isfinite(r[key])),
                       key=_ranking(table, self.criterion))
        ranking = tuple((model_name(table[i]["covariance_type"], self.n_features_in_), int(table[i]["n_components"]),
                         float(table[i][key])) for i in valid[:3])
        return mixture_summary(best, row["log_likelihood"], row["n_parameters"], row["bic"], row["icl"],
                               self.cluster_sizes_, ranking, self.criterion)

    def bic(self, X):
        """BIC of the chosen model on ``X``."""
        return self._best().bic(self._checked(X))

    def aic(self, X):
        """AIC of the chosen model on ``X``."""
        return self._best().aic(self._checked(X))


@dataclass(frozen=True)
class _Folds:
    """Cross-validation folds as row indices into the prepared data, with the checked sample weights.

    A fold's rows are copied only while the fold is fitted or scored, so a
    search holds at most one fold beside the data (and sends only indices to
    parallel workers).
    """

    weights: np.ndarray
    splits: tuple[tuple[np.ndarray, np.ndarray], ...]

    def prepare(self, data: FitData, rows: np.ndarray) -> FitData:
        return data.engine.prepare(data.rows[rows], self.weights[rows], device=data.device)


def _column(criterion: str) -> str:
    """The results' column a criterion ranks by."""
    return "cv_log_likelihood" if criterion == "cv" else criterion


def _ranking(records: list[dict], criterion: str):
    """The sort key of candidate ``i``: best first by ``criterion``, then fewer parameters, then the grid's
    order."""
    key, sign = _column(criterion), (-1.0 if criterion == "cv" else 1.0)
    return lambda i: (sign * records[i][key], records[i]["n_parameters"], i)


def _too_many(n_components: int, covariance_type: str, n_positive: int) -> dict:
    """The record of a candidate that is not fitted because it has more components than rows."""
    record: dict[str, Any] = dict.fromkeys(TABLE_COLUMNS, math.nan)
    record.update(n_components=int(n_components), covariance_type=covariance_type, converged=False, n_iter=0,
                  fit_time=0.0, error=f"Expected n_samples >= n_components: more components than the {n_positive} "
                                      "rows with positive weight (not fitted)")
    return record


def _print_progress(record, done, total):
    what = f"{record['covariance_type']}, {record['n_components']} components"
    outcome = f"failed: {record['error']}" if record["error"] else f"BIC {record['bic']:.3f}"
    print(f"[{done}/{total}] {what}: {outcome} ({record['fit_time']:.2f} s)", file=sys.stderr, flush=True)


def select(X, n_components: Iterable[int] = DEFAULT_COMPONENTS, **params) -> GaussianMixtureSelector:
    """Fit a :class:`GaussianMixtureSelector` to ``X`` and return it.

    ``gaussmix.select(X).best_estimator_`` is the chosen mixture and
    ``.results_`` the table of every candidate; ``params`` are the
    selector's other parameters (``sample_weight`` is passed to ``fit``).
    """
    sample_weight = params.pop("sample_weight", None)
    return GaussianMixtureSelector(n_components, **params).fit(X, sample_weight=sample_weight)
