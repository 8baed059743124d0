"""``full``: each component has its own unrestricted covariance matrix (mclust's VVV).

The estimate is each component's scatter over its weight, ``W_k / n_k``,
plus the regularisation on the diagonal.
"""

from __future__ import annotations

import numpy as np

from gaussmix.covariance._linalg import safe_counts, symmetrize
from gaussmix.covariance._structure import CovarianceStructure
from gaussmix.covariance.layouts import FULL


def estimate(scatter, counts, reg, previous):
    cov = symmetrize(scatter / safe_counts(counts)[:, None, None])
    idx = np.arange(cov.shape[-1])
    cov[:, idx, idx] += reg
    return cov


def count(n_components, n_features):
    return n_components * n_features * (n_features + 1) // 2


STRUCTURE = CovarianceStructure(
    name="full",
    description="one general covariance matrix per component",
    layout=FULL,
    estimate=estimate,
    count=count,
)
