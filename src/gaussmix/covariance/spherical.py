"""``spherical``: each component has one variance shared by all features (mclust's VII).

The estimate is the component's mean variance over the features (its
scatter's trace over ``d n_k``), plus the mean regularisation.
"""

from __future__ import annotations

import numpy as np

from gaussmix.covariance._linalg import safe_counts
from gaussmix.covariance._structure import CovarianceStructure
from gaussmix.covariance.layouts import SCALAR


def estimate(scatter, counts, reg, previous):
    return scatter / (safe_counts(counts) * reg.shape[0]) + np.mean(reg)


def count(n_components, n_features):
    return n_components


STRUCTURE = CovarianceStructure(
    name="spherical",
    description="one variance per component, the same for every feature",
    layout=SCALAR,
    estimate=estimate,
    count=count,
)
