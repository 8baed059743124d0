"""A uniform noise component (Banfield and Raftery 1993; mclust's ``noise``): its region and a first guess.

A mixture with a noise component has, besides its Gaussians, a component of
constant density ``1 / V`` over the data's region of volume ``V``. In EM it
is one constant column of the log-probabilities (see
:class:`~gaussmix.em.params.MixtureParams`); its weight is what the
Gaussians' weights leave of 1. This module measures ``V``
(:func:`hypervolume`) and makes the first guess of which rows are noise
(:func:`noise_guess`), from which the Gaussians are started.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

#: How ``V`` is measured: mclust's ``hypvol`` (the smaller of the bounding box along the features and
#: along the principal axes), either box alone, or the convex hull.
VolumeMethod = Literal["hypvol", "box", "principal", "hull"]
VOLUME_METHODS = ("hypvol", "box", "principal", "hull")

#: The neighbour whose distance :func:`noise_guess` models (the k of Byers and Raftery's rule).
NOISE_NEIGHBOUR = 5


def hypervolume(X: np.ndarray, method: VolumeMethod = "hypvol") -> float:
    """The volume of the region of rows ``X`` (m, d) as ``method`` measures it.

    ``"box"`` is the bounding box along the features, ``"principal"`` the
    bounding box along the principal axes of the rows, ``"hypvol"`` the
    smaller of the two (mclust's ``hypvol``), ``"hull"`` the convex hull (the
    range for one feature). A region of no volume (the rows in a subspace)
    is a ValueError.
    """
    X = np.asarray(X, dtype=np.float64)
    if method not in VOLUME_METHODS:
        raise ValueError(f"unknown volume method {method!r}; use one of {', '.join(VOLUME_METHODS)}")
    if method == "hull" and X.shape[1] > 1:
        from scipy.spatial import ConvexHull, QhullError

        try:
            volume = float(ConvexHull(X).volume)
        except (QhullError, ValueError):
            volume = 0.0
    else:
        box = float(np.prod(np.ptp(X, axis=0)))
        if method == "box" or X.shape[1] == 1:
            volume = box
        else:
            centred = X - X.mean(axis=0)
            _, spread, axes = np.linalg.svd(centred, full_matrices=False)
            if spread[-1] <= 1e-10 * spread[0]:  # the rows lie in a subspace (up to rounding)
                volume = 0.0
            else:
                principal = float(np.prod(np.ptp(centred @ axes.T, axis=0)))
                volume = principal if method == "principal" else min(box, principal)
    if not (volume > 0 and math.isfinite(volume)):
        raise ValueError(
            f"the rows span no volume ({method} volume {volume:g}): they lie in a subspace, so a uniform noise "
            "component has no density; drop the features that depend on others or give the volume"
        )
    return volume


def noise_guess(X: np.ndarray, neighbour: int = NOISE_NEIGHBOUR, minimum_signal: int = 0) -> np.ndarray:
    """Which rows of ``X`` look like noise by the density of their neighbourhood (boolean, (m,)).

    Byers and Raftery's (1998) rule: in a homogeneous Poisson process of
    rate ``lambda`` in ``d`` dimensions, the volume ``Y`` of the ball reaching
    a point's ``k``-th nearest neighbour is gamma distributed with shape ``k``
    and rate ``lambda``. The rows' ``Y`` are fitted by a mixture of two such
    gammas (clusters: dense, noise: sparse) by EM, and the rows more probably
    in the sparse one are noise. Distances are measured in units of each
    feature's spread. At least ``minimum_signal`` rows, the densest, are
    left as signal (on few rows the sparse gamma can take them all).
    """
    from scipy.spatial import cKDTree

    X = np.asarray(X, dtype=np.float64)
    m, d = X.shape
    k = min(neighbour, m - 1)
    if k < 1:
        return np.zeros(m, dtype=bool)
    spread = np.std(X, axis=0)
    scaled = X / np.where(spread > 0, spread, 1.0)
    distances = cKDTree(scaled).query(scaled, k=k + 1)[0][:, k]
    log_volume = d * np.log(np.maximum(distances, np.finfo(float).tiny))
    y = np.exp(log_volume - np.median(log_volume))  # the ball's volume up to a constant, near 1
    order = np.sort(y)
    cut = order[int(0.8 * (m - 1))]
    rates = np.array([k / max(np.mean(y[y <= cut]), 1e-300), k / max(np.mean(y[y > cut]) if np.any(y > cut)
                                                                      else 2 * cut, 1e-300)])
    share = np.array([0.8, 0.2])
    for _ in range(200):
        log_p = np.log(share)[None, :] + k * np.log(rates)[None, :] - y[:, None] * rates[None, :]
        log_p -= np.max(log_p, axis=1, keepdims=True)
        resp = np.exp(log_p)
        resp /= np.sum(resp, axis=1, keepdims=True)
        totals = np.sum(resp, axis=0)
        if np.any(totals <= 1e-9 * m):
            break
        new_rates = k * totals / (resp.T @ y)
        share = totals / m
        done = np.allclose(new_rates, rates, rtol=1e-6)
        rates = new_rates
        if done:
            break
    sparse = int(np.argmin(rates))
    log_p = np.log(share)[None, :] + k * np.log(rates)[None, :] - y[:, None] * rates[None, :]
    noise = log_p[:, sparse] > log_p[:, 1 - sparse]
    keep = min(minimum_signal, m)
    if np.count_nonzero(~noise) < keep:
        noise[np.argsort(y, kind="stable")[:keep]] = False
    return noise
