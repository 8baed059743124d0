"""Pictures of fitted mixtures (needs matplotlib: ``pip install 'gaussmix[plot]'``).

Every function takes fitted models (or recorded results) and data, and
returns a :class:`matplotlib.figure.Figure`; save it with
``figure.savefig(path)``. Figures are created without pyplot, so they work
on any backend, including none. Data with more than two features are drawn
as the marginal mixture of chosen pairs of features (``features=``), or of
every pair of the first five features.

==========================  ==================================================
:func:`density_contours`    log-density contours over the data, means marked
:func:`criterion_curve`     BIC / AIC against the number of components
:func:`ellipses`            1-2-3 sigma ellipses, soft and hard assignments
:func:`em_progress`         the fit after chosen EM iterations
:func:`density_1d`          a 1-D mixture over a histogram, with components
:func:`anomalies`           points below a density threshold highlighted
:func:`uncertainty`         points coloured by 1 - max responsibility
==========================  ==================================================
"""

from gaussmix.plot._components import ellipses, em_progress, uncertainty
from gaussmix.plot._density import anomalies, density_1d, density_contours
from gaussmix.plot._selection import criterion_curve

__all__ = ["anomalies", "criterion_curve", "density_1d", "density_contours", "ellipses", "em_progress", "uncertainty"]
