"""Information criteria against the number of components."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from gaussmix.plot._common import component_colors, matplotlib_figure


def _records(table: Any) -> list[dict]:
    if hasattr(table, "results_"):
        table = table.results_
    if hasattr(table, "to_dict"):
        return table.to_dict("records")
    return [dict(row) for row in table]


def criterion_curve(table: Any, criterion: str | Sequence[str] = ("bic", "aic"), *, ax=None):
    """BIC (and AIC) against the number of components, one line per covariance structure.

    The best candidate of each criterion (the lowest value) is marked and
    named in the legend.

    Parameters
    ----------
    table : records, DataFrame, or an object with a ``results_`` table
        Rows with ``n_components``, ``covariance_type`` and the criteria's
        columns, for example from :func:`gaussmix.selection.criterion_table`.
        Rows whose value is NaN (failed fits) are skipped.
    criterion : str or sequence of str
        Column(s) to draw, one panel each.
    ax : matplotlib Axes, optional
        Only with a single criterion.

    Returns
    -------
    matplotlib.figure.Figure
    """
    criteria = [criterion] if isinstance(criterion, str) else list(criterion)
    rows = _records(table)
    if not rows:
        raise ValueError("the table has no candidates")
    columns = set().union(*rows)
    missing = [c for c in criteria + ["n_components", "covariance_type"] if c not in columns]
    if missing:
        raise ValueError(f"the table has no column {missing[0]!r}; it has {sorted(columns)}")
    if ax is not None and len(criteria) != 1:
        raise ValueError("ax can only be given with a single criterion")
    structures = list(dict.fromkeys(r["covariance_type"] for r in rows))
    many = len(structures) > 6  # mclust's fourteen models: one legend beside the panels
    if ax is None:
        figure = matplotlib_figure(figsize=(6.0 * len(criteria) + (1.8 if many else 0.0), 4.6))
        axes = [figure.add_subplot(1, len(criteria), n + 1) for n in range(len(criteria))]
    else:
        figure, axes = ax.figure, [ax]
    colors = component_colors(len(structures))
    markers = "o s ^ D v P X < > p h * d H".split()  # one for each of mclust's fourteen models
    for axis, name in zip(axes, criteria):
        best = None
        for color, marker, structure in zip(colors, itertools.cycle(markers), structures):
            points = sorted(
                (r["n_components"], float(r[name]))
                for r in rows
                if r["covariance_type"] == structure and np.isfinite(float(r.get(name, np.nan)))
            )
            if not points:
                continue
            ks, values = zip(*points)
            axis.plot(ks, values, marker=marker, markersize=5 if many else 6, color=color, label=structure,
                      linewidth=1.2 if many else 1.5)
            low = int(np.argmin(values))
            if best is None or values[low] < best[2]:
                best = (structure, ks[low], values[low])
        if best is not None:
            axis.scatter([best[1]], [best[2]], s=260, facecolors="none", edgecolors="crimson", linewidths=2.2,
                         zorder=5, label=f"best: {best[0]}, {best[1]} components")
        axis.set_xlabel("number of components")
        axis.set_ylabel(f"{name.upper()} (lower is better)")
        axis.set_title(f"{name.upper()} across candidate component counts")
        axis.xaxis.get_major_locator().set_params(integer=True)
        if not many:
            axis.legend(fontsize="small")
        elif best is not None:
            axis.legend([axis.collections[-1]], [f"best: {best[0]}, {best[1]} components"], fontsize="small")
    if many:
        handles = [line for line in axes[0].get_lines()]
        figure.legend(handles, [h.get_label() for h in handles], loc="outside right center", fontsize="small",
                      frameon=False)
    return figure
