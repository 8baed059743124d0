"""Shared plotting helpers: figures without pyplot, feature pairs, ellipses, colours."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from gaussmix._mixture import feature_indices as model_feature_indices

MAX_GRID_FEATURES = 5


def matplotlib_figure(**kwargs):
    """A new Figure, without pyplot's global state (works on any backend, or none)."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - exercised only without matplotlib
        raise ImportError("gaussmix.plot needs matplotlib: pip install 'gaussmix[plot]'") from exc
    return Figure(layout="constrained", **kwargs)


def new_axes(ax=None, figsize=(6.0, 5.0)):
    """``ax`` if given, else the single Axes of a new Figure."""
    if ax is not None:
        return ax
    return matplotlib_figure(figsize=figsize).add_subplot()


def as_array(X: Any) -> np.ndarray:
    """Rows as a float64 array (DataFrames included)."""
    values = np.asarray(X.to_numpy() if hasattr(X, "to_numpy") else X, dtype=np.float64)
    return values.reshape(-1, 1) if values.ndim == 1 else values


def feature_names(model) -> list[str]:
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    return [f"feature {j}" for j in range(model.n_features_in_)]


def feature_indices(model, features: Sequence[Any]) -> list[int]:
    """Indices for feature names, indices, or the axis labels of an unnamed model ("feature 2")."""
    labels = feature_names(model)
    return model_feature_indices(model, [labels.index(f) if isinstance(f, str) and f in labels else f
                                         for f in features])


def feature_pairs(model, features: Sequence[Any] | None) -> list[tuple[int, int]]:
    """The feature pairs to draw: the given pair, the only pair, or all pairs of the first few."""
    d = model.n_features_in_
    if d < 2:
        raise ValueError("this plot needs at least 2 features; use density_1d for one feature")
    if features is not None:
        index = feature_indices(model, features)
        if len(index) == 2:
            return [(index[0], index[1])]
        if len(index) < 2:
            raise ValueError(f"features must name at least 2 features, got {features!r}")
        return list(itertools.combinations(index, 2))
    return list(itertools.combinations(range(min(d, MAX_GRID_FEATURES)), 2))


#: Figures of many panels are at most this many inches on a side (1,760 pixels at 110 dpi).
MAX_FIGURE_INCHES = 16.0


def grid_panel_size(n_cells: int, preferred: float) -> float:
    """Inches per panel of a square grid of ``n_cells`` rows, so that the figure stays readable."""
    return min(preferred, MAX_FIGURE_INCHES / max(n_cells, 1))


def pair_grid(pairs: list[tuple[int, int]], ax=None, panel_size=3.6, extra_columns=0):
    """Axes for each pair: ``ax`` for one pair, else an upper-triangular grid on a new Figure.

    The grid has one row and column per feature drawn, less one; panels
    shrink with more features so that the figure stays at most
    :data:`MAX_FIGURE_INCHES` on a side.
    """
    if len(pairs) == 1 and ax is not None:
        return ax.figure, [ax]
    if len(pairs) == 1:
        figure = matplotlib_figure(figsize=(6.0 * (1 + extra_columns), 5.0))
        return figure, [figure.add_subplot(1, 1 + extra_columns, 1)]
    features = sorted({f for pair in pairs for f in pair})
    size = len(features) - 1
    panel = grid_panel_size(size, panel_size)
    figure = matplotlib_figure(figsize=(panel * size, panel * size))
    grid = figure.add_gridspec(size, size)
    axes = []
    for i, j in pairs:
        row, col = features.index(i), features.index(j) - 1
        axis = figure.add_subplot(grid[row, col])
        shrink_text(axis, panel)
        axes.append(axis)
    return figure, axes


def shrink_text(axis, panel_inches: float) -> None:
    """Smaller tick labels on small panels, so that they do not overlap."""
    if panel_inches < 3.0:
        axis.tick_params(labelsize=max(5.0, 9.0 * panel_inches / 3.0))
        axis.xaxis.label.set_size(max(6.0, 10.0 * panel_inches / 3.0))
        axis.yaxis.label.set_size(max(6.0, 10.0 * panel_inches / 3.0))


def component_colors(n_components: int) -> np.ndarray:
    """RGB colours for components (tab10, then tab20, then evenly spaced hues)."""
    from matplotlib import colormaps

    if n_components <= 10:
        colors = colormaps["tab10"](np.arange(n_components))
    elif n_components <= 20:
        colors = colormaps["tab20"](np.arange(n_components))
    else:
        colors = colormaps["hsv"](np.linspace(0, 1, n_components, endpoint=False))
    return colors[:, :3]


def mixed_colors(responsibilities: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """Each row's colour: its components' colours weighted by its responsibilities."""
    return np.clip(responsibilities @ colors, 0.0, 1.0)


def ellipse_geometry(covariance: np.ndarray, radius: float) -> tuple[float, float, float]:
    """Width, height and angle (degrees) of ``{x: x' C^-1 x = radius^2}`` for a 2x2 C."""
    values, vectors = np.linalg.eigh(covariance)
    values = np.maximum(values, 0.0)
    major = vectors[:, 1]
    angle = float(np.degrees(np.arctan2(major[1], major[0])))
    return 2.0 * radius * float(np.sqrt(values[1])), 2.0 * radius * float(np.sqrt(values[0])), angle


def draw_ellipses(ax, model, radii=(1.0, 2.0, 3.0), colors=None, linewidth=1.5):
    """Covariance ellipses of a 2-feature model at the given Mahalanobis radii."""
    from matplotlib.patches import Ellipse

    from gaussmix.covariance import get_structure

    full = get_structure(model.covariance_type).layout.full_covariances(
        np.asarray(model.covariances_, dtype=np.float64), model.n_components, 2
    )
    colors = component_colors(model.n_components) if colors is None else colors
    patches = []
    for k in range(model.n_components):
        if model.weights_[k] == 0:
            continue  # a dropped component has no data to describe
        for n, radius in enumerate(radii):
            width, height, angle = ellipse_geometry(full[k], radius)
            patch = Ellipse(
                model.means_[k], width, height, angle=angle, fill=False, edgecolor=colors[k],
                linewidth=linewidth * (1.0 - 0.2 * n), alpha=1.0 - 0.25 * n,
            )
            ax.add_patch(patch)
            patches.append(patch)
    return patches


def panel_scale(ax) -> float:
    """1 for a panel at least 3 inches wide, less for the small panels of a large grid."""
    width = ax.get_position().width * ax.figure.get_figwidth()
    return min(1.0, width / 3.0)


def mark_means(ax, model, colors=None, size=None):
    """The component means as large crosses (smaller on small panels)."""
    size = 140.0 * panel_scale(ax) ** 2 if size is None else size
    colors = component_colors(model.n_components) if colors is None else colors
    live = np.asarray(model.weights_) > 0
    return ax.scatter(
        model.means_[live, 0], model.means_[live, 1], marker="X", s=size, c=colors[live],
        edgecolors="black", linewidths=1.2, zorder=5, label="component means",
    )


def padded_limits(values: np.ndarray, pad: float = 0.08) -> tuple[float, float]:
    low, high = float(np.min(values)), float(np.max(values))
    span = high - low if high > low else max(abs(high), 1.0)
    return low - pad * span, high + pad * span


def label_axes(ax, names: list[str], i: int, j: int) -> None:
    ax.set_xlabel(names[i])
    ax.set_ylabel(names[j])
