"""Comparing candidate mixtures by information criteria or held-out likelihood.

:class:`GaussianMixtureSelector` (also ``gaussmix.GaussianMixtureSelector``)
searches a grid of component counts and covariance structures;
:func:`select` fits one; :func:`criterion_table` returns just its table.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gaussmix._selector import GaussianMixtureSelector, information_criteria, select

__all__ = ["GaussianMixtureSelector", "criterion_table", "information_criteria", "select"]


def criterion_table(
    X: Any,
    n_components: Iterable[int] = range(1, 7),
    covariance_types: Iterable[str] | None = None,
    *,
    sample_weight: Any = None,
    **params: Any,
) -> list[dict[str, Any]]:
    """Fit every candidate and tabulate its log-likelihood, BIC, AIC and ICL.

    The records of :attr:`GaussianMixtureSelector.results_` as a list of
    dicts (see there for the keys); a candidate that cannot be fitted has an
    ``error`` and NaN numbers. ``params`` are the selector's parameters.

    Examples
    --------
    >>> from gaussmix.datasets import load_faithful
    >>> from gaussmix.selection import criterion_table
    >>> table = criterion_table(load_faithful().data, [2, 3], ["tied"], n_init=3, random_state=0)
    >>> [(r["n_components"], round(r["bic"], 1)) for r in table]
    [(2, 2325.2), (3, 2314.7)]
    """
    selector = GaussianMixtureSelector(list(n_components), covariance_types=covariance_types, **params)
    outcomes, _ = selector._search(X, sample_weight)
    return [record for record, _ in outcomes]
