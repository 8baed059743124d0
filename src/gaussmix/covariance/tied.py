"""``tied``: one covariance matrix shared by all components (mclust's EEE).

The estimate is the pooled within-component scatter over the total weight,
``sum_k W_k / n``, plus the regularisation on the diagonal.
"""

from __future__ import annotations

import numpy as np

from gaussmix.covariance._linalg import symmetrize
from gaussmix.covariance._structure import CovarianceStructure
from gaussmix.covariance.layouts import SHARED


def estimate(scatter, counts, reg, previous):
    cov = symmetrize(scatter / max(float(np.sum(counts)), np.finfo(float).tiny))
    cov.flat[:: cov.shape[0] + 1] += reg  # the diagonal
    return cov


def count(n_components, n_features):
    return n_features * (n_features + 1) // 2


STRUCTURE = CovarianceStructure(
    name="tied",
    description="one general covariance matrix shared by all components",
    layout=SHARED,
    estimate=estimate,
    count=count,
)
