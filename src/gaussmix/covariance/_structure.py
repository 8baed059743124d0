"""What a covariance structure is: a storage layout and an estimate.

A structure is data, not a class hierarchy: a name (the ``covariance_type``
users pass), its aliases, a description, a :class:`~gaussmix.covariance.Layout`
(shapes, kernels, conversions, sampling), an *estimate* that turns the
centred scatter of the summed statistics into covariances in the layout's
shape, and the number of free parameters in those covariances.

The estimate is called as ``estimate(scatter, counts, reg, previous)``:

* ``scatter``: the layout's centred scatter (:meth:`Layout.scatter`), about
  each component's own weighted mean;
* ``counts`` (K,): the summed responsibilities (0 for an empty component,
  whose covariance is replaced afterwards);
* ``reg`` (d,): what is added to each feature's variance;
* ``previous``: the covariances of the previous iteration (None at the
  start), for estimates that iterate (a fixed point or a
  majorisation-minimisation step started from the last estimate keeps EM
  monotone).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gaussmix._validation import finite_array, shape_message
from gaussmix.covariance._layout import Layout

Estimate = Callable[[np.ndarray, np.ndarray, np.ndarray, "np.ndarray | None"], np.ndarray]
ParameterCount = Callable[[int, int], int]


@dataclass(frozen=True, eq=False)
class CovarianceStructure:
    """One covariance structure: ``name``, ``layout``, ``estimate`` and parameter count.

    Attributes
    ----------
    name : str
        The registry name, the value users pass as ``covariance_type``.
    description : str
        One line for error messages and documentation.
    layout : Layout
        How the covariances are stored and computed with.
    estimate : callable
        ``estimate(scatter, counts, reg, previous) -> covariances`` (see the module docstring).
    count : callable
        ``count(n_components, n_features)``: free parameters in the covariances.
    aliases : tuple of str
        Other names accepted for this structure.
    couples : bool
        Whether the estimate ties the components of a per-component layout
        together (a volume, shape or orientation equal for all of them):
        several mixtures held as one set of components are then estimated
        mixture by mixture.
    """

    name: str
    description: str
    layout: Layout
    estimate: Estimate
    count: ParameterCount
    aliases: tuple[str, ...] = ()
    couples: bool = False

    def covariances(
        self, counts: np.ndarray, first: np.ndarray, second: np.ndarray, reg: np.ndarray,
        previous: np.ndarray | None = None,
    ) -> np.ndarray:
        """The M-step's covariances from statistics about one shift (see :meth:`Layout.scatter`)."""
        return self.estimate(self.layout.scatter(counts, first, second), counts, reg, previous)

    @property
    def mclust_name(self) -> str | None:
        """mclust's three-letter name of this model (``"VVV"`` for ``full``), or None where it has none."""
        for name in (self.name, *self.aliases):
            if len(name) == 3 and set(name) <= set("EVI"):
                return name
        return None

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        """Number of free parameters in the covariances."""
        return int(self.count(n_components, n_features))

    def covariance_shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        """Shape of ``covariances_``, ``precisions_`` and ``precisions_cholesky_``."""
        return self.layout.shape(n_components, n_features)

    def check_precisions(self, precisions: Any, n_components: int, n_features: int) -> np.ndarray:
        """Validate user-given precisions; return them as float64 or raise ValueError."""
        name = "precisions_init"
        array = finite_array(precisions, name)
        expected = self.covariance_shape(n_components, n_features)
        if array.shape != expected:
            raise ValueError(shape_message(f"{self.name} precision", expected, array.shape,
                                           f"that of covariances_ for covariance_type={self.name!r} ({name})"))
        self.layout.check_precision_values(array, self.name, name)
        return array

    def __repr__(self) -> str:
        return f"<covariance structure {self.name!r}: {self.description}>"
