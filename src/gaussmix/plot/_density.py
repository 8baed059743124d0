"""Density views: contours over the data, a 1-D mixture over a histogram, anomalies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gaussmix._validation import call_unnamed
from gaussmix.plot._common import (
    as_array,
    feature_indices,
    feature_names,
    feature_pairs,
    label_axes,
    mark_means,
    new_axes,
    padded_limits,
    pair_grid,
)


def _grid_log_density(model, x_limits, y_limits, resolution):
    xs = np.linspace(*x_limits, resolution)
    ys = np.linspace(*y_limits, resolution)
    gx, gy = np.meshgrid(xs, ys)
    points = np.column_stack([gx.ravel(), gy.ravel()]).astype(model.means_.dtype)
    return gx, gy, call_unnamed(model.score_samples, points).reshape(gx.shape)


def _contour_levels(log_density_of_data: np.ndarray, grid_values: np.ndarray, n_levels: int) -> np.ndarray:
    """Levels from just below the data's lowest densities up to the peak."""
    low = float(np.quantile(log_density_of_data, 0.005))
    high = float(np.max(grid_values))
    if not high > low:
        high = low + 1.0
    return np.linspace(low, high, n_levels + 1)[:-1]


def density_contours(
    model,
    X: Any,
    *,
    features: Sequence[Any] | None = None,
    ax=None,
    levels: int = 12,
    resolution: int = 200,
    show_points: bool = True,
):
    """Log-density contour lines of a fitted mixture over the data, means marked.

    Data with more than two features are drawn on the marginal density of
    each pair of features (``features`` chooses the features; by default all
    pairs of the first five).

    Parameters
    ----------
    model : fitted GaussianMixture
    X : array-like of shape (n_samples, n_features)
        The points to draw.
    features : pair or list of feature indices or names, optional
    ax : matplotlib Axes, optional
        Draw into this Axes (one pair of features only).
    levels : int
        Number of contour levels, spaced evenly in log-density from below the
        data's lowest densities to the peak.
    resolution : int
        Grid points along each axis.
    show_points : bool
        Scatter the data under the contours.

    Returns
    -------
    matplotlib.figure.Figure
    """
    X = as_array(X)
    pairs = feature_pairs(model, features)
    figure, axes = pair_grid(pairs, ax)
    names = feature_names(model)
    panels = []
    for i, j in pairs:
        view = model.marginal([i, j])
        points = X[:, [i, j]]
        grid = _grid_log_density(view, padded_limits(points[:, 0]), padded_limits(points[:, 1]), resolution)
        panels.append((view, points, grid, call_unnamed(view.score_samples, points)))
    # One set of levels for every panel, so that the shared colour bar reads the same everywhere.
    contour_levels = _contour_levels(
        np.concatenate([scores for *_, scores in panels]),
        np.concatenate([grid[2].ravel() for _, _, grid, _ in panels]),
        levels,
    )
    contour = None
    for axis, (i, j), (view, points, (gx, gy, values), _) in zip(axes, pairs, panels):
        if show_points:
            noise = np.zeros(len(points), dtype=bool)
            if getattr(view, "noise_volume_", None) is not None:  # the noise component's rows: crosses
                noise = call_unnamed(view.predict, points.astype(view.means_.dtype)) == -1
                axis.scatter(points[noise, 0], points[noise, 1], s=12, c="0.45", alpha=0.6, marker="x",
                             linewidths=0.7, label="noise")
            axis.scatter(points[~noise, 0], points[~noise, 1], s=8, c="0.35", alpha=0.5, linewidths=0, label="data")
        contour = axis.contour(gx, gy, values, levels=contour_levels, cmap="viridis", linewidths=1.2)
        mark_means(axis, view)
        label_axes(axis, names, i, j)
    figure.colorbar(contour, ax=axes, label="log density", shrink=0.8)
    if len(pairs) == 1:
        axes[0].set_title(f"Density contours of a {model.n_components}-component mixture ({model.covariance_type})")
        axes[0].legend(loc="best", fontsize="small")
    else:
        figure.suptitle(f"Marginal density contours, {model.n_components} components ({model.covariance_type})")
    return figure


def density_1d(model, x: Any, *, feature: Any = 0, ax=None, bins: Any = "auto", resolution: int = 400):
    """A fitted mixture over a histogram of one feature, with each weighted component.

    For a model of several features, ``feature`` picks one and the marginal
    mixture of that feature is drawn.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from gaussmix.covariance import get_structure
    from gaussmix.plot._common import component_colors

    values = as_array(x)
    if values.shape[1] > 1:
        values = values[:, [feature_indices(model, [feature])[0]]]
    view = model if model.n_features_in_ == 1 else model.marginal(feature_indices(model, [feature]))
    values = values[:, 0]
    ax = new_axes(ax, figsize=(7.0, 4.5))
    ax.hist(values, bins=bins, density=True, color="0.8", edgecolor="0.55", label="data")
    grid = np.linspace(*padded_limits(values, 0.1), resolution)
    density = np.exp(call_unnamed(view.score_samples, grid[:, None].astype(view.means_.dtype)))
    ax.plot(grid, density, color="black", lw=2, label="mixture")
    variances = get_structure(view.covariance_type).layout.full_covariances(
        np.asarray(view.covariances_, dtype=np.float64), view.n_components, 1
    )[:, 0, 0]
    colors = component_colors(view.n_components)
    for k in range(view.n_components):
        if view.weights_[k] == 0:
            continue
        density = view.weights_[k] * np.exp(-0.5 * (grid - view.means_[k, 0]) ** 2 / variances[k]) / np.sqrt(
            2 * np.pi * variances[k]
        )
        ax.plot(grid, density, color=colors[k], lw=1.5, ls="--", label=f"component {k} (weight {view.weights_[k]:.2f})")
    ax.set_xlabel(feature_names(view)[0])
    ax.set_ylabel("density")
    ax.legend(fontsize="small")
    ax.set_title(f"{view.n_components}-component mixture of one feature")
    return ax.figure


def anomalies(
    model,
    X: Any,
    threshold: float | None = None,
    *,
    features: Sequence[Any] | None = None,
    ax=None,
    quantile: float = 0.02,
):
    """Points whose log-density is below ``threshold`` highlighted over the data.

    Parameters
    ----------
    threshold : float, optional
        Log-density floor; rows of ``X`` below it are anomalies. By default
        the ``quantile`` of the rows' own log-densities.
    features : pair or list of features, optional
        Which pairs to draw for data with more than two features. The
        threshold always applies to the full density; with exactly two
        features the threshold's contour is drawn too.

    Returns
    -------
    matplotlib.figure.Figure
    """
    X = as_array(X)
    scores = call_unnamed(model.score_samples, X.astype(model.means_.dtype))
    if threshold is None:
        threshold = float(np.quantile(scores, quantile))
    outlying = scores < threshold
    pairs = feature_pairs(model, features)
    figure, axes = pair_grid(pairs, ax)
    names = feature_names(model)
    for axis, (i, j) in zip(axes, pairs):
        axis.scatter(X[~outlying, i], X[~outlying, j], s=8, c="0.6", alpha=0.6, linewidths=0, label="inliers")
        axis.scatter(X[outlying, i], X[outlying, j], s=36, c="crimson", marker="x", linewidths=1.5,
                     label=f"log density < {threshold:.3g}")
        if model.n_features_in_ == 2:
            gx, gy, values = _grid_log_density(model, axis.get_xlim(), axis.get_ylim(), 200)
            axis.contour(gx, gy, values, levels=[threshold], colors="crimson", linewidths=1.0, linestyles="--")
        label_axes(axis, names, i, j)
    axes[0].legend(loc="best", fontsize="small")
    title = f"{int(outlying.sum())} of {len(X)} points below the density threshold"
    (axes[0].set_title if len(pairs) == 1 else figure.suptitle)(title)
    return figure
