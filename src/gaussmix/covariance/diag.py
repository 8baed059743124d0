"""``diag``: each component has its own axis-aligned (diagonal) covariance (mclust's VVI).

The estimate is each component's variance along each feature, plus the
regularisation.
"""

from __future__ import annotations

from gaussmix.covariance._linalg import safe_counts
from gaussmix.covariance._structure import CovarianceStructure
from gaussmix.covariance.layouts import DIAGONAL


def estimate(scatter, counts, reg, previous):
    return scatter / safe_counts(counts)[:, None] + reg


def count(n_components, n_features):
    return n_components * n_features


STRUCTURE = CovarianceStructure(
    name="diag",
    description="one diagonal covariance matrix per component",
    layout=DIAGONAL,
    estimate=estimate,
    count=count,
)
