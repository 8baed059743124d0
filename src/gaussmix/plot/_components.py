"""Component views: covariance ellipses with soft and hard assignments, EM progress."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gaussmix._validation import call_unnamed
from gaussmix.plot._common import (
    as_array,
    component_colors,
    draw_ellipses,
    feature_names,
    feature_pairs,
    grid_panel_size,
    label_axes,
    mark_means,
    matplotlib_figure,
    mixed_colors,
    padded_limits,
    shrink_text,
)

#: The colour of a noise component's rows.
NOISE_COLOR = np.array([0.45, 0.45, 0.45])


def _draw_assignments(axis, view, points, colors, hard: bool, scale: float = 1.0):
    """Points coloured by their responsibilities (or hard labels), ellipses and means; ``scale`` shrinks marks."""
    resp = call_unnamed(view.predict_proba, points.astype(view.means_.dtype))
    noisy = resp.shape[1] > len(colors)  # a noise component: its rows grey crosses
    shown = np.vstack([colors, NOISE_COLOR]) if noisy else colors
    if hard:
        point_colors = shown[np.argmax(resp, axis=1)]
    else:
        point_colors = mixed_colors(resp, shown)
    signal = ~(np.argmax(resp, axis=1) == len(colors)) if noisy else np.ones(len(points), dtype=bool)
    axis.scatter(points[signal, 0], points[signal, 1], s=10 * scale**2, c=point_colors[signal], linewidths=0,
                 alpha=0.85)
    if noisy:
        axis.scatter(points[~signal, 0], points[~signal, 1], s=14 * scale**2, c=point_colors[~signal], marker="x",
                     linewidths=0.8 * scale, alpha=0.8, label="noise")
        axis.legend(loc="best", fontsize="small")
    draw_ellipses(axis, view, colors=colors, linewidth=1.5 * scale)
    mark_means(axis, view, colors=colors, size=140 * scale**2)
    axis.set_xlim(padded_limits(np.r_[points[:, 0], view.means_[:, 0]]))
    axis.set_ylim(padded_limits(np.r_[points[:, 1], view.means_[:, 1]]))


def ellipses(model, X: Any, *, features: Sequence[Any] | None = None, radii=(1.0, 2.0, 3.0)):
    """Covariance ellipses over the data: soft assignment beside hard labels.

    Soft assignment: each point coloured by the responsibility-weighted mix
    of its components' colours, so uncertain points between components
    show blended colours. Hard labels: each point in its most probable
    component's colour. Ellipses mark 1, 2 and 3 standard deviations
    (Mahalanobis radii) of each component. Two features give two panels
    side by side; more give a matrix of pairs (the marginal mixture of each
    pair), soft assignments above the diagonal and hard labels below it,
    which stays at most 16 inches on a side whatever the number of features.

    Returns
    -------
    matplotlib.figure.Figure
    """
    X = as_array(X)
    pairs = feature_pairs(model, features)
    names = feature_names(model)
    colors = component_colors(model.n_components)
    title = (f"{model.n_components} components ({model.covariance_type}); ellipses at "
             + ", ".join(f"{r:g}" for r in radii) + " standard deviations")
    if len(pairs) == 1:
        (i, j), = pairs
        figure = matplotlib_figure(figsize=(11.0, 4.8))
        view, points = model.marginal([i, j]), X[:, [i, j]]
        for col, hard in enumerate((False, True)):
            axis = figure.add_subplot(1, 2, col + 1)
            _draw_assignments(axis, view, points, colors, hard)
            axis.set_title("hard labels" if hard else "soft assignment (colours mixed by responsibility)")
            label_axes(axis, names, i, j)
        figure.suptitle(title)
        return figure
    features_drawn = sorted({f for pair in pairs for f in pair})
    size = len(features_drawn)
    panel = grid_panel_size(size, 3.0)
    figure = matplotlib_figure(figsize=(panel * size, panel * size))
    grid = figure.add_gridspec(size, size)
    for i, j in pairs:
        a, b = features_drawn.index(i), features_drawn.index(j)
        # Row a, column b: x is feature j, y is feature i (soft); the mirror cell shows hard labels.
        for row, col, shown, hard in ((a, b, [j, i], False), (b, a, [i, j], True)):
            axis = figure.add_subplot(grid[row, col])
            _draw_assignments(axis, model.marginal(shown), X[:, shown], colors, hard, scale=min(1.0, panel / 3.0))
            shrink_text(axis, panel)
            axis.tick_params(labelbottom=row == size - 1, labelleft=col == 0)
    for k, feature in enumerate(features_drawn):
        axis = figure.add_subplot(grid[k, k])
        axis.axis("off")
        axis.text(0.5, 0.5, names[feature], ha="center", va="center", transform=axis.transAxes,
                  fontsize=max(6.0, 11.0 * panel / 3.0), wrap=True)
    figure.suptitle(title + "\nabove the diagonal: soft assignment (colours mixed by responsibility); "
                    "below: hard labels", fontsize=max(8.0, 12.0 * min(1.0, panel / 2.0)))
    return figure


def em_progress(
    source,
    X: Any,
    *,
    iterations: Sequence[int] = (1, 2, 5, 20),
    features: Sequence[Any] | None = None,
    restart: int = 0,
):
    """How EM moves the Gaussians: the fit after chosen iterations, one panel each.

    Parameters
    ----------
    source : GaussianMixture or sequence of IterationInfo
        An estimator (fitted or not): a copy of it is fitted to ``X`` while a
        callback records every iteration. Or the ``IterationInfo`` objects a
        ``callback`` recorded during an earlier fit.
    X : array-like
        The data the fit used.
    iterations : sequence of int
        Iterations to show (0 is the initialisation). An iteration past the
        end of the fit shows the final parameters.
    features : pair of features, optional
        Which two features to draw (default: the first two).
    restart : int
        Which initialisation to show when ``n_init > 1``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from sklearn.base import clone

    from gaussmix import GaussianMixture

    X = as_array(X)
    names = None
    if isinstance(source, GaussianMixture):
        history = []
        estimator = clone(source).set_params(
            max_iter=max(source.max_iter, max(iterations)), callback=history.append, warm_start=False
        )
        estimator.fit(X)
        names = getattr(estimator, "feature_names_in_", None)
    else:
        history = list(source)
    history = [info for info in history if info.restart == restart]
    if not history:
        raise ValueError(f"no iterations recorded for restart {restart}")
    by_iteration = {info.iteration: info for info in history}
    last = max(by_iteration)

    def snapshot(info):
        return GaussianMixture.from_parameters(
            info.weights, info.means, info.covariances, covariance_type=info.covariance_type,
            feature_names=None if names is None else list(names),
        )

    template = snapshot(history[-1])
    pair = feature_pairs(template, features)[0]
    names_shown = feature_names(template)
    points = X[:, list(pair)]
    colors = component_colors(template.n_components)
    panels = len(iterations)
    columns = min(panels, 4)
    rows = -(-panels // columns)
    figure = matplotlib_figure(figsize=(4.2 * columns, 4.0 * rows))
    for n, wanted in enumerate(iterations):
        shown = min(wanted, last)
        model = snapshot(by_iteration[shown])
        view = model.marginal(list(pair))
        axis = figure.add_subplot(rows, columns, n + 1)
        _draw_assignments(axis, view, points, colors, hard=False)
        loglik = call_unnamed(model.score, X.astype(np.float64))
        label = "initialisation" if shown == 0 else f"iteration {shown}"
        if shown < wanted:
            label += f" (converged; asked for {wanted})"
        axis.set_title(f"{label}\nmean log-likelihood {loglik:.4f}", fontsize="medium")
        label_axes(axis, names_shown, *pair)
    figure.suptitle(f"EM progress: {template.n_components} components ({template.covariance_type})")
    return figure


def uncertainty(model, X: Any, *, features: Sequence[Any] | None = None):
    """Classification uncertainty: each point coloured by ``1 - max responsibility``.

    0 means the point certainly belongs to one component; values near
    ``1 - 1/K`` mean it could belong to several. Component ellipses (1 and 2
    standard deviations) give the context.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from gaussmix.plot._common import pair_grid

    X = as_array(X)
    values = 1.0 - call_unnamed(model.predict_proba, X.astype(model.means_.dtype)).max(axis=1)
    pairs = feature_pairs(model, features)
    figure, axes = pair_grid(pairs)
    names = feature_names(model)
    colors = component_colors(model.n_components)
    order = np.argsort(values)  # most uncertain points drawn last, on top
    points = None
    for axis, (i, j) in zip(axes, pairs):
        view = model.marginal([i, j])
        points = axis.scatter(
            X[order, i], X[order, j], c=values[order], cmap="plasma", vmin=0.0,
            vmax=max(1.0 - 1.0 / model.n_components, 1e-12), s=8 + 60 * values[order], linewidths=0,
        )
        draw_ellipses(axis, view, radii=(1.0, 2.0), colors=colors, linewidth=1.0)
        label_axes(axis, names, i, j)
    figure.colorbar(points, ax=axes, label="uncertainty: 1 - max responsibility", shrink=0.8)
    above = int(np.sum(values > 0.1))
    title = f"Classification uncertainty ({above} point{'s' * (above != 1)} above 0.1)"
    (axes[0].set_title if len(pairs) == 1 else figure.suptitle)(title)
    return figure
