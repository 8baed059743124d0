"""The Old Faithful geyser data."""

from __future__ import annotations

import csv
from importlib import resources

import numpy as np
from sklearn.utils import Bunch

DESCR = """Old Faithful geyser data
========================

272 eruptions of the Old Faithful geyser in Yellowstone National Park
(R's ``datasets::faithful``; Azzalini & Bowman, Applied Statistics 39, 1990).

Columns
-------
eruptions : eruption time, minutes
waiting   : waiting time to the next eruption, minutes

The classic example for Gaussian mixtures: two clusters of eruptions, best
described by three components. mclust's BIC selects a tied covariance (EEE)
with 3 components: log-likelihood -1126.326, 11 parameters, BIC 2314.316 (in
the convention where lower is better).
"""


def load_faithful(*, return_X_y: bool = False, as_frame: bool = False):
    """Load the Old Faithful geyser data (272 rows, 2 features).

    Parameters
    ----------
    return_X_y : bool, default=False
        Return only the ``(272, 2)`` data array (there is no target, so this
        returns ``(data, None)`` for symmetry with scikit-learn's loaders).
    as_frame : bool, default=False
        Also put a pandas DataFrame in ``frame`` and make ``data`` a DataFrame
        (needs pandas).

    Returns
    -------
    bunch : sklearn.utils.Bunch
        ``data`` (272, 2) float64, ``feature_names``, ``frame``, ``DESCR``.

    Examples
    --------
    >>> from gaussmix.datasets import load_faithful
    >>> faithful = load_faithful()
    >>> faithful.data.shape, faithful.feature_names
    ((272, 2), ['eruptions', 'waiting'])
    """
    with resources.files("gaussmix.datasets").joinpath("data/faithful.csv").open() as handle:
        reader = csv.reader(handle)
        feature_names = next(reader)
        data = np.array([[float(v) for v in row] for row in reader])
    frame = None
    if as_frame:
        import pandas as pd

        frame = pd.DataFrame(data, columns=feature_names)
        data = frame
    if return_X_y:
        return data, None
    return Bunch(data=data, feature_names=feature_names, frame=frame, DESCR=DESCR)
