"""Comparing candidate mixtures by information criteria."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np

from gaussmix.covariance import available_structures


def criterion_table(
    X: Any,
    n_components: Iterable[int] = range(1, 7),
    covariance_types: Iterable[str] | None = None,
    *,
    sample_weight: Any = None,
    **params: Any,
) -> list[dict[str, Any]]:
    """Fit every candidate and tabulate its log-likelihood, BIC and AIC.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_components : iterable of int
        Component counts to try.
    covariance_types : iterable of str, optional
        Structures to try (default: all registered ones).
    sample_weight : array-like, optional
        Passed to every fit; the criteria then use the weighted
        log-likelihood and the total weight as the sample size.
    **params
        Other :class:`~gaussmix.GaussianMixture` parameters (``n_init``,
        ``random_state``, ``tol`` ...), the same for every candidate.

    Returns
    -------
    list of dict
        One record per candidate, in the order tried, with keys
        ``n_components``, ``covariance_type``, ``log_likelihood`` (total),
        ``n_parameters``, ``bic``, ``aic``, ``converged``, ``n_iter`` and
        ``error`` (None, or why the candidate could not be fitted; its
        numbers are then NaN).

    Examples
    --------
    >>> from gaussmix.datasets import load_faithful
    >>> from gaussmix.selection import criterion_table
    >>> table = criterion_table(load_faithful().data, [2, 3], ["tied"], n_init=3, random_state=0)
    >>> [(r["n_components"], round(r["bic"], 1)) for r in table]
    [(2, 2325.2), (3, 2315.6)]
    """
    from gaussmix import GaussianMixture

    X_values = np.asarray(X.to_numpy() if hasattr(X, "to_numpy") else X)
    weights = np.ones(X_values.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    total = float(weights.sum())
    records = []
    for covariance_type in covariance_types or available_structures():
        for k in n_components:
            record: dict[str, Any] = {"n_components": int(k), "covariance_type": covariance_type}
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model = GaussianMixture(k, covariance_type=covariance_type, **params)
                    model.fit(X, sample_weight=sample_weight)
                loglik = float(np.dot(weights, model.score_samples(X)))
                p = model._n_parameters()
                record.update(
                    log_likelihood=loglik,
                    n_parameters=p,
                    bic=-2.0 * loglik + p * math.log(total),
                    aic=-2.0 * loglik + 2.0 * p,
                    converged=bool(model.converged_),
                    n_iter=int(model.n_iter_),
                    error=None,
                )
            except ValueError as exc:
                record.update(
                    log_likelihood=math.nan, n_parameters=math.nan, bic=math.nan, aic=math.nan,
                    converged=False, n_iter=0, error=str(exc),
                )
            records.append(record)
    return records
