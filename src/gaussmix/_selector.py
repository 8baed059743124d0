"""Choosing the number of components and the covariance structure."""

from __future__ import annotations

import itertools
import math
import sys
import time
import warnings
from collections.abc import Iterable
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import validate_data

from gaussmix._data import ChunkedData
from gaussmix._engines import check_dask, resolve_engine
from gaussmix._namespace import is_dask_collection, is_torch_tensor
from gaussmix._persistence import SaveMixin
from gaussmix._validation import (
    check_choice,
    check_fitted,
    check_int,
    check_real,
    check_sample_weight,
)
from gaussmix.covariance import available_structures, get_structure
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


def information_criteria(model, X, weights: np.ndarray) -> dict[str, float]:
    """Log-likelihood, free parameters, BIC, AIC and ICL of a fitted model on weighted rows.

    All criteria are "lower is better". ICL is BIC plus twice the entropy of
    the hard classification, ``-2 sum_i w_i log max_k z_ik`` (mclust's
    definition, with the sign flipped to match scikit-learn's BIC).
    """
    log_density = model.score_samples(X)
    resp = model.predict_proba(X)
    if is_torch_tensor(log_density):
        log_density, resp = log_density.cpu().numpy(), resp.cpu().numpy()
    with np.errstate(divide="ignore"):
        certainty = np.log(np.max(resp, axis=1))
    if is_dask_collection(log_density):  # lazy: two sums over the blocks
        import dask

        loglik, weighted_certainty, n = (
            float(v) for v in dask.compute((weights * log_density).sum(), (weights * certainty).sum(), weights.sum())
        )
    else:
        loglik, weighted_certainty = float(np.dot(weights, log_density)), float(np.dot(weights, certainty))
        n = float(np.sum(weights))
    p = model._n_parameters()
    bic = -2.0 * loglik + p * math.log(n)
    return {
        "log_likelihood": loglik,
        "n_parameters": p,
        "bic": bic,
        "aic": -2.0 * loglik + 2.0 * p,
        "icl": bic - 2.0 * weighted_certainty,
    }


def _evaluate(X, weights, n_components, covariance_type, params, folds):
    """Fit one candidate (and its cross-validation folds); never raises for a failed fit."""
    from gaussmix import GaussianMixture

    record: dict[str, Any] = dict.fromkeys(TABLE_COLUMNS, math.nan)
    record.update(n_components=int(n_components), covariance_type=covariance_type, converged=False, n_iter=0,
                  error=None)
    start = time.perf_counter()
    model = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = GaussianMixture(n_components, covariance_type=covariance_type, **params)
            model.fit(X, sample_weight=weights)
            if model.collapsed_components_.size:
                which = ", ".join(str(k) for k in model.collapsed_components_)
                raise FitError(
                    f"degenerate fit: component {which} collapsed onto rows sharing one value in some "
                    "direction, so its likelihood is inflated"
                )
            record.update(information_criteria(model, X, weights))
            record.update(converged=bool(model.converged_), n_iter=int(model.n_iter_))
            if folds:
                held_out = []
                for train, test in folds:
                    fold = GaussianMixture(n_components, covariance_type=covariance_type, **params)
                    fold.fit(X[train], sample_weight=weights[train])
                    held_out.append(float(np.average(fold.score_samples(X[test]), weights=weights[test])))
                record.update(cv_log_likelihood=float(np.mean(held_out)), cv_std=float(np.std(held_out)))
    except ValueError as exc:  # FitError, too few rows, singular covariances ...
        record["error"] = " ".join(str(exc).split())
        model = None
        for key in ("log_likelihood", "n_parameters", "bic", "aic", "icl", "cv_log_likelihood", "cv_std"):
            record[key] = math.nan
    record["fit_time"] = time.perf_counter() - start
    return record, model


class GaussianMixtureSelector(SaveMixin, DensityMixin, BaseEstimator):
    """Choose the number of components and the covariance structure of a Gaussian mixture.

    Fits every candidate of a grid (``n_components`` x ``covariance_types``)
    and keeps the best by an information criterion or by held-out
    log-likelihood. The selector is itself a density estimator: it predicts,
    scores and samples with the chosen model, so it fits in pipelines.

    Parameters
    ----------
    n_components : iterable of int or int, default=(1, ..., 9)
        Component counts to try (an integer: that count only, as mclust's ``G``).
    covariance_types : iterable of str or None, default=None
        Structures to try; ``None`` tries every registered structure.
    criterion : {"bic", "aic", "icl", "cv"}, default="bic"
        How candidates are ranked: BIC, AIC or ICL on the training data
        (lower is better), or the mean held-out log-likelihood per row over
        ``cv`` folds ("cv", higher is better; a likelihood criterion such as
        BIC has no place inside cross-validation). Ties go to the candidate
        with fewer parameters.
    cv : int or cross-validation splitter, default=5
        Folds for ``criterion="cv"`` (shuffled with ``random_state``).
    n_init : int, default=3
        Starts per candidate (the best is kept). Selection compares the best
        fit of each candidate, so a candidate stuck in a poor local optimum
        would be misjudged; a few starts make the choice reliable.
    init_params, tol, reg_covar, max_iter : see :class:`GaussianMixture`
        The same for every candidate.
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
    {'n_components': 3, 'covariance_type': 'tied'}
    """

    def __init__(
        self,
        n_components: Iterable[int] = DEFAULT_COMPONENTS,
        *,
        covariance_types: Iterable[str] | None = None,
        criterion: Criterion = "bic",
        cv: Any = 5,
        n_init: int = 3,
        init_params: str = "kmeans",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        random_state: Any = None,
        n_jobs: int | None = None,
        verbose: int = 0,
        engine: str = "auto",
        device: Any = None,
    ):
        self.n_components = n_components
        self.covariance_types = covariance_types
        self.criterion = criterion
        self.cv = cv
        self.n_init = n_init
        self.init_params = init_params
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.engine = engine
        self.device = device

    def _candidates(self) -> list[tuple[int, str]]:
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
        types = list(available_structures() if self.covariance_types is None else self.covariance_types)
        if isinstance(self.covariance_types, str):
            types = [self.covariance_types]
        if not types:
            raise InvalidParameterError("covariance_types must contain at least one structure.")
        for name in types:
            get_structure(name)  # raises for unknown names, listing the valid ones
        return [(k, t) for t in dict.fromkeys(types) for k in dict.fromkeys(counts)]

    def _check_features(self, X, weights) -> None:
        """Refuse data out of float range and warn about constant features once, before any candidate."""
        from gaussmix._em import DataScale, constant_features_message

        if is_dask_collection(X):
            from gaussmix._dask import DaskData

            data = DaskData(X, weights)
        else:
            data = ChunkedData(X, weights)
        scale = DataScale.of(data, check_real(self.reg_covar, "reg_covar", 0.0))
        constant = tuple(int(j) for j in np.flatnonzero(~scale.varies))
        if constant:
            warnings.warn(constant_features_message(constant, scale.reg_covar), ConstantFeatureWarning, stacklevel=4)

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

    def _folds(self, X, seed):
        if self.criterion != "cv":
            return None
        from sklearn.model_selection import KFold, check_cv

        splitter = KFold(self.cv, shuffle=True, random_state=seed) if isinstance(self.cv, int) else check_cv(self.cv)
        return list(splitter.split(X))

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
        outcomes = self._search(X, sample_weight)
        records = [record for record, _ in outcomes]
        scored = [i for i, (record, model) in enumerate(outcomes) if model is not None]
        if not scored:
            reasons = "; ".join(dict.fromkeys(r["error"] for r in records))
            raise FitError(f"no candidate could be fitted: {reasons}")
        key = "cv_log_likelihood" if self.criterion == "cv" else self.criterion
        sign = -1.0 if self.criterion == "cv" else 1.0
        best = min(scored, key=lambda i: (sign * records[i][key], records[i]["n_parameters"], i))
        self.best_index_ = best
        self.best_estimator_ = outcomes[best][1]
        self.best_params_ = {
            "n_components": records[best]["n_components"],
            "covariance_type": records[best]["covariance_type"],
        }
        self.results_ = _as_table(records)
        self._warn_at_the_edge(records, scored)
        return self

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
                stacklevel=3,
            )

    def _search(self, X, sample_weight):
        """Validate, then fit every candidate: a list of (record, fitted model or None)."""
        check_choice(self.criterion, "criterion", CRITERIA)
        check_int(self.verbose, "verbose", 0)
        candidates = self._candidates()
        engine = resolve_engine(self.engine, self.device, X)
        device = self.device
        if engine == "dask":
            if self.criterion == "cv":
                raise InvalidParameterError(
                    "criterion='cv' is not available for Dask data; use 'bic', 'aic' or 'icl'."
                )
            from gaussmix._dask import check_weights

            X = check_dask(self, X, reset=True, min_samples=2)
            weights, n_positive = check_weights(
                np.ones(X.shape[0]) if sample_weight is None else sample_weight, X, rescale=False
            )
        else:
            if is_torch_tensor(X):
                device = X.device if device is None else device
                X = X.detach().cpu().numpy()
            X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
            weights = check_sample_weight(sample_weight, X.shape[0])
            n_positive = int(np.count_nonzero(weights))
        self._check_room(candidates, n_positive)
        self._check_features(X, weights)
        seed = self.random_state
        if not (seed is None or isinstance(seed, (int, np.integer))):
            seed = int(check_random_state(seed).randint(np.iinfo(np.int32).max))
        params = dict(n_init=self.n_init, init_params=self.init_params, tol=self.tol, reg_covar=self.reg_covar,
                      max_iter=self.max_iter, random_state=seed, engine=engine,
                      device=device if engine == "torch" else None)
        possible = [(k, t) for k, t in candidates if k <= n_positive]
        outcomes = dict(zip(possible, self._run(X, weights, possible, params, self._folds(X, seed))))
        return [outcomes.get((k, t)) or (_too_many(k, t, n_positive), None) for k, t in candidates]

    def _run(self, X, weights, candidates, params, folds):
        total = len(candidates)
        report = (lambda record, done: _print_progress(record, done, total)) if self.verbose else None
        if self.n_jobs in (None, 1):
            outcomes = []
            for k, t in candidates:
                outcomes.append(_evaluate(X, weights, k, t, params, folds))
                if report:
                    report(outcomes[-1][0], len(outcomes))
            return outcomes
        from joblib import Parallel, delayed

        tasks = (delayed(_evaluate)(X, weights, k, t, params, folds) for k, t in candidates)
        outcomes = []
        for outcome in Parallel(n_jobs=self.n_jobs, return_as="generator")(tasks):
            outcomes.append(outcome)
            if report:
                report(outcome[0], len(outcomes))
        return outcomes

    # -- the chosen model ------------------------------------------------------
    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "best_estimator_")

    def _best(self):
        check_fitted(self, "best_estimator_")
        return self.best_estimator_

    def _checked(self, X):
        self._best()
        if is_torch_tensor(X) or is_dask_collection(X):
            return X  # the chosen model checks them on its engine
        return validate_data(self, X, dtype=[np.float64, np.float32], reset=False)

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

    def bic(self, X):
        """BIC of the chosen model on ``X``."""
        return self._best().bic(self._checked(X))

    def aic(self, X):
        """AIC of the chosen model on ``X``."""
        return self._best().aic(self._checked(X))


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


def _as_table(records: list[dict]):
    """A DataFrame when pandas is installed, else the records."""
    if _pandas_available():
        import pandas as pd

        return pd.DataFrame.from_records(records, columns=list(TABLE_COLUMNS))
    return records


def _pandas_available() -> bool:
    from importlib.util import find_spec

    return find_spec("pandas") is not None


def select(X, n_components: Iterable[int] = DEFAULT_COMPONENTS, **params) -> GaussianMixtureSelector:
    """Fit a :class:`GaussianMixtureSelector` to ``X`` and return it.

    ``gaussmix.select(X).best_estimator_`` is the chosen mixture and
    ``.results_`` the table of every candidate; ``params`` are the
    selector's other parameters (``sample_weight`` is passed to ``fit``).
    """
    sample_weight = params.pop("sample_weight", None)
    return GaussianMixtureSelector(n_components, **params).fit(X, sample_weight=sample_weight)
