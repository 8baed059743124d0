"""What an engine is: the seam between an estimator's input and EM.

An engine turns an estimator's input (a NumPy array or array-like, a torch
tensor, a Dask collection) into a data source (:class:`~gaussmix.em.source.DataSource`)
for fitting, and evaluates a fitted mixture on new rows, returning results
in the input's kind: a NumPy array, a tensor on the input's device, a lazy
Dask array. Estimators ask their engine and never the input's type.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from gaussmix.covariance._structure import CovarianceStructure
from gaussmix.em.kernels import LOG_DENSITY, Reduction
from gaussmix.em.params import MixtureParams
from gaussmix.em.source import DataSource


@dataclass(frozen=True)
class FitData:
    """An estimator's training data, checked and turned into a data source.

    Attributes
    ----------
    source : DataSource
    n_positive : int
        Rows of positive weight.
    weight_exponent : int
        The source's weights are the given ones times ``2 ** weight_exponent``
        (an exact rescaling that keeps sums of tiny or huge weights in
        range; a fit does not depend on the weights' common scale).
    engine : Engine
    device : Any
        The device the data were fitted on (torch), else None.
    rows : Any
        The checked input the source was made from (folds index it).
    """

    source: DataSource
    n_positive: int
    weight_exponent: int
    engine: Engine
    device: Any = None
    rows: Any = None

    def given_scale(self, value: Any) -> Any:
        """``value``, a weighted sum over the source's rows, in the units of the given weights."""
        return np.ldexp(value, -self.weight_exponent)


class Engine(ABC):
    """Where the computations run (see :mod:`gaussmix.engines`)."""

    #: the value of the estimators' ``engine`` parameter
    name: ClassVar[str]
    #: whether the engine runs on a torch ``device``
    uses_device: ClassVar[bool] = False
    #: whether rows can be picked by index (for cross-validation folds)
    indexable: ClassVar[bool] = True
    #: how messages name the engine's input
    title: ClassVar[str] = "in-memory"
    #: whether ``engine="auto"`` falls back on this engine when no other takes the input
    fallback: ClassVar[bool] = False
    #: the library the engine needs (None: nothing beyond gaussmix's own dependencies)
    library: ClassVar[str | None] = None

    def available(self) -> bool:
        """Whether the engine's library is installed (checked without importing it)."""
        from importlib.util import find_spec

        return self.library is None or find_spec(self.library) is not None

    @abstractmethod
    def accepts(self, X: Any, device: Any) -> bool:
        """Whether ``engine="auto"`` runs input ``X`` (with ``device``) here; checked without importing."""

    @abstractmethod
    def check(self, estimator: Any, X: Any, *, reset: bool, min_samples: int = 1) -> Any:
        """``X`` validated as scikit-learn validates arrays, in the engine's input kind.

        With ``reset`` it records ``n_features_in_`` (and ``feature_names_in_``)
        on ``estimator``; otherwise it checks ``X`` against them.
        """

    @abstractmethod
    def prepare(self, X: Any, sample_weight: Any, *, device: Any) -> FitData:
        """Training data from checked input ``X`` and raw ``sample_weight`` (checked here)."""

    @abstractmethod
    def source(self, X: Any, *, device: Any) -> DataSource:
        """An unweighted data source over checked input ``X`` (for evaluation)."""

    @abstractmethod
    def evaluate(
        self, estimator: Any, X: Any, structure: CovarianceStructure, params: MixtureParams, reduction: Reduction,
        *, device: Any,
    ) -> Any:
        """``reduction`` of the rows of ``X`` under the mixture, in the input's kind."""

    def mean(self, values: Any) -> float:
        """The mean of an array returned by :meth:`evaluate` (computed as its array library computes it)."""
        return float(np.mean(values))

    def fit_data(self, estimator: Any, X: Any, sample_weight: Any, *, device: Any) -> FitData:
        """Check ``X`` for fitting (at least 2 rows) and prepare it with ``sample_weight``."""
        return self.prepare(self.check(estimator, X, reset=True, min_samples=2), sample_weight, device=device)

    def log_likelihood(
        self, estimator: Any, X: Any, structure: CovarianceStructure, params: MixtureParams, *, device: Any
    ) -> tuple[float, int]:
        """The summed log-density of the rows of ``X`` and their number (one pass, a float on the host)."""
        X = self.check(estimator, X, reset=False)
        source = self.source(X, device=device)
        return float(source.weighted_sum(structure, params, LOG_DENSITY)), int(source.n_samples)
