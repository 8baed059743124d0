"""A one-file HTML report of a model search: data, selection, model, pictures, anomalies.

The page is self-contained: figures are inline PNG images, the style sheet is
inline, and nothing is fetched from the network, so it opens anywhere.
"""

from __future__ import annotations

import base64
import copy
import html
import io
from dataclasses import dataclass
from typing import Any

import numpy as np

STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2433; margin: 0;
       background: #f6f7f9; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 32px 64px; background: #fff; }
h1 { margin-bottom: 4px; } h2 { margin-top: 40px; border-bottom: 2px solid #e3e6eb; padding-bottom: 4px; }
.meta { color: #5b6475; margin-top: 0; }
nav a { margin-right: 16px; color: #2f5fb3; text-decoration: none; }
table { border-collapse: collapse; margin: 12px 0; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e3e6eb; text-align: right; }
th { background: #f0f2f5; } td.text, th.text { text-align: left; }
tr.best td { background: #fff4d6; font-weight: 600; }
img { max-width: 100%; height: auto; display: block; margin: 12px 0; border: 1px solid #e3e6eb; }
.scroll { overflow-x: auto; max-width: 100%; }
.note { color: #5b6475; font-size: 14px; }
details summary { cursor: pointer; color: #2f5fb3; }
"""


#: Tables with a column per feature are turned (a row per feature) beyond this many features.
WIDE = 6


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(figure, alt: str) -> str:
    return f'<img src="{_png(figure)}" alt="{html.escape(alt)}">'


def _number(value: Any, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    if not np.isfinite(value):
        return "–"
    return f"{value:.{digits}g}" if abs(value) < 1e-3 or abs(value) >= 1e6 else f"{value:.{digits}f}"


def _table(header: list[str], rows: list[list[Any]], text_columns=(), highlight: int | None = None) -> str:
    def cell(tag, value, j):
        css = ' class="text"' if j in text_columns else ""
        shown = html.escape(str(value)) if j in text_columns else _number(value)
        return f"<{tag}{css}>{shown}</{tag}>"

    head = "".join(
        f'<th{" class=" + chr(34) + "text" + chr(34) if j in text_columns else ""}>{html.escape(h)}</th>'
        for j, h in enumerate(header)
    )
    body = []
    for i, row in enumerate(rows):
        css = ' class="best"' if i == highlight else ""
        body.append(f"<tr{css}>" + "".join(cell("td", v, j) for j, v in enumerate(row)) + "</tr>")
    # A table wider than the page scrolls inside its own box; the page itself never does.
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def build_report(
    X: Any,
    *,
    selector: Any = None,
    feature_names: list[str] | None = None,
    source: str = "data",
    n_anomalies: int = 10,
) -> str:
    """The report as one HTML string.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    selector : GaussianMixtureSelector, optional
        Fitted or not (it is fitted to ``X`` if not); default: a selector
        with its defaults and ``random_state=0``.
    feature_names : list of str, optional
        Column names (taken from a DataFrame's columns when ``X`` has them).
    source : str
        Where the data came from, shown in the title.
    n_anomalies : int
        How many of the lowest-density rows to list.
    """
    from gaussmix._selector import GaussianMixtureSelector

    if feature_names is None and hasattr(X, "columns"):
        feature_names = [str(c) for c in X.columns]
    values = np.asarray(X.to_numpy() if hasattr(X, "to_numpy") else X, dtype=np.float64)
    names = feature_names or [f"x{j}" for j in range(values.shape[1])]
    if selector is None:
        selector = GaussianMixtureSelector(random_state=0)
    if not hasattr(selector, "best_estimator_"):
        selector.fit(values)
    model = selector.best_estimator_
    view = copy.deepcopy(model)  # the chosen model (its noise component too) with the report's feature names
    view.feature_names_in_ = np.asarray(names, dtype=object)
    report = _Report(values, names, selector, model, view)
    parts = [
        *_head(report, source),
        *_data_section(report),
        *_selection_section(report),
        *_model_section(report),
        *_pictures_section(report),
        *_anomalies_section(report, n_anomalies),
        "</main></body></html>",
    ]
    return "\n".join(parts)


@dataclass(frozen=True)
class _Report:
    """What every section of a report draws on."""

    values: np.ndarray
    names: list[str]
    selector: Any
    model: Any
    #: the chosen model with the feature names (the plots label their axes with them)
    view: Any

    @property
    def wide(self) -> bool:
        """Whether there are more features than fit across the page (tables are then turned)."""
        return self.values.shape[1] > WIDE


def _head(report: _Report, source: str) -> list[str]:
    from gaussmix._version import __version__

    n, d = report.values.shape
    return [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>gaussmix report: {html.escape(source)}</title>",
        f"<style>{STYLE}</style></head><body><main>",
        "<h1>Gaussian mixture report</h1>",
        f'<p class="meta">{html.escape(source)} · {n} rows × {d} features · gaussmix {__version__}</p>',
        '<nav><a href="#data">Data</a><a href="#selection">Model selection</a><a href="#model">Chosen model</a>'
        '<a href="#pictures">Density and components</a><a href="#uncertainty">Uncertainty</a>'
        '<a href="#anomalies">Anomalous rows</a></nav>',
    ]


def _data_section(report: _Report) -> list[str]:
    values = report.values
    summary = [
        [name, values[:, j].mean(), values[:, j].std(), values[:, j].min(), np.median(values[:, j]),
         values[:, j].max()]
        for j, name in enumerate(report.names)
    ]
    return ['<section id="data"><h2>Data</h2>',
            _table(["feature", "mean", "std", "min", "median", "max"], summary, text_columns=(0,)), "</section>"]


def _selection_section(report: _Report) -> list[str]:
    from gaussmix import plot

    selector = report.selector
    records = selector.results_
    records = records.to_dict("records") if hasattr(records, "to_dict") else list(records)
    criterion = selector.criterion
    key = "cv_log_likelihood" if criterion == "cv" else criterion
    ordered = sorted(
        (r for r in records if r["error"] is None or r["error"] != r["error"]),
        key=lambda r: (-r[key] if criterion == "cv" else r[key]),
    )
    failed = [r for r in records if isinstance(r["error"], str)]
    best = selector.best_params_
    header = ["components", "covariance", "log-likelihood", "parameters", "BIC", "AIC", "ICL"]
    columns = ["n_components", "covariance_type", "log_likelihood", "n_parameters", "bic", "aic", "icl"]
    if criterion == "cv":
        header.append("held-out log-lik.")
        columns.append("cv_log_likelihood")
    rows = [[r[c] for c in columns] for r in ordered]
    label = {"bic": "BIC", "aic": "AIC", "icl": "ICL", "cv": "held-out log-likelihood"}[criterion]
    parts = [
        '<section id="selection"><h2>Model selection</h2>',
        f"<p>{len(records)} candidates ({len(failed)} could not be fitted). By {label}, the best is "
        f"<strong>{best['n_components']} components with {html.escape(best['covariance_type'])} "
        "covariance</strong>. Lower BIC, AIC and ICL are better (mclust reports the negatives of BIC and "
        "ICL).</p>",
        f"<pre>{html.escape(str(selector.summary()))}</pre>",
        _img(plot.criterion_curve(records, ("bic", "icl") if criterion != "aic" else ("aic",)),
             "information criteria against the number of components"),
        "<h3>Best candidates</h3>",
        _table(header, rows[:10], text_columns=(1,), highlight=0),
    ]
    if len(rows) > 10 or failed:
        all_rows = rows + [[r["n_components"], r["covariance_type"], *[np.nan] * (len(columns) - 2)] for r in failed]
        parts += [f"<details><summary>All {len(records)} candidates</summary>",
                  _table(header, all_rows, text_columns=(1,), highlight=0)]
        if failed:
            parts.append("<p class=note>Not fitted: " + "; ".join(
                html.escape(f"{r['covariance_type']}/{r['n_components']}: {r['error']}") for r in failed[:12]
            ) + "</p>")
        parts.append("</details>")
    parts.append("</section>")
    return parts


def _model_section(report: _Report) -> list[str]:
    from gaussmix.covariance.decomposition import described

    model, names = report.model, report.names
    full = model.covariance_matrices_
    if not report.wide:
        component_table = _table(["component", "weight", *[f"mean {n}" for n in names]],
                                 [[k, model.weights_[k], *model.means_[k]] for k in range(model.n_components)])
    else:
        component_table = _table(
            ["", *[f"component {k}" for k in range(model.n_components)]],
            [["weight", *model.weights_], *[[f"mean {n}", *model.means_[:, j]] for j, n in enumerate(names)]],
            text_columns=(0,),
        )
    from gaussmix._summary import prior_in_words

    name = model.model_name_
    words = described(model.covariance_type, model.n_features_in_)
    in_words = words if name == model.covariance_type else f"mclust's {name}: {words}"
    prior = prior_in_words(getattr(model, "prior", None))
    fitted_by = "maximum likelihood" if prior is None else f"maximum a posteriori (prior: {prior})"
    if hasattr(model, "weight_concentration_"):
        fitted_by = (f"variational Bayes with a {model.weight_concentration_prior_type.replace('_', ' ')} prior "
                     f"on the weights ({int(np.sum(model.weights_ > 0.01))} components above weight 0.01)")
    if getattr(model, "noise_volume_", None) is not None:
        owned = int(np.sum(model.predict(report.values) == -1))
        fitted_by += (f", with a uniform noise component of weight {model.noise_proportion_:.3f} over a region "
                      f"of volume {model.noise_volume_:.4g}, which owns {owned} rows (label -1)")
    volume, shape = np.broadcast_to(model.volume_, (model.n_components,)), np.atleast_2d(model.shape_)
    shape = np.broadcast_to(shape, (model.n_components, shape.shape[1]))
    parts = [
        '<section id="model"><h2>Chosen model</h2>',
        f"<p>{model.n_components} components, {html.escape(model.covariance_type)} covariance "
        f"({html.escape(in_words)}), fitted by {html.escape(fitted_by)}, "
        f"{model.n_iter_} EM iterations, converged: {'yes' if model.converged_ else 'no'}. "
        f"Mean log-likelihood per row {_number(model.score(report.values))}.</p>",
        component_table,
    ]
    if not report.wide:
        parts += [
            "<p>Each covariance is <em>volume</em> × <em>D</em> diag(<em>shape</em>) <em>D</em>ᵀ: the volume is "
            "det(Σ)<sup>1/d</sup>, the shape its eigenvalues over the volume (product 1) and <em>D</em> "
            "their eigenvectors (the orientation).</p>",
            _table(["component", "volume", *[f"shape {j + 1}" for j in range(shape.shape[1])]],
                   [[k, volume[k], *shape[k]] for k in range(model.n_components)]),
        ]
    parts += ["<details><summary>Covariance matrices</summary>"]
    for k in range(model.n_components):
        parts += [f"<p>Component {k}</p>", _table(["", *names], [[names[i], *full[k, i]] for i in range(len(names))],
                                                   text_columns=(0,))]
    parts += ["</details></section>"]
    return parts


def _pictures_section(report: _Report) -> list[str]:
    from gaussmix import plot

    view, values = report.view, report.values
    return [
        '<section id="pictures"><h2>Density and components</h2>',
        _img(plot.density_contours(view, values), "log-density contours over the data"),
        _img(plot.ellipses(view, values), "covariance ellipses with soft and hard assignments"),
        "</section>",
        '<section id="uncertainty"><h2>Uncertainty</h2>',
        "<p>Each point is coloured by 1 − its largest responsibility: 0 when it certainly belongs to one "
        "component, higher where components overlap.</p>",
        _img(plot.uncertainty(view, values), "classification uncertainty"),
        "</section>",
    ]


def _anomalies_section(report: _Report, n_anomalies: int) -> list[str]:
    from gaussmix import plot

    model, values, names = report.model, report.values, report.names
    scores = model.score_samples(values)
    labels = model.predict(values)
    worst = np.argsort(scores, kind="stable")[:n_anomalies]
    threshold = float(np.quantile(scores, 0.02))
    if not report.wide:
        anomaly_table = _table(["row", *names, "log-density", "component"],
                               [[int(i) + 1, *values[i], scores[i], int(labels[i])] for i in worst])
    else:
        anomaly_table = _table(
            ["", *[f"row {int(i) + 1}" for i in worst]],
            [*[[n, *values[worst, j]] for j, n in enumerate(names)], ["log-density", *scores[worst]],
             ["component", *[int(v) for v in labels[worst]]]],
            text_columns=(0,),
        )
    return [
        '<section id="anomalies"><h2>Most anomalous rows</h2>',
        f"<p>The {len(worst)} rows of lowest log-density under the chosen model (row numbers count from 1).</p>",
        anomaly_table,
        _img(plot.anomalies(report.view, values, threshold), "rows below the 2% density quantile highlighted"),
        "</section>",
    ]


def write_report(path, X: Any, *, inputs: Any = (), **kwargs: Any) -> None:
    """Build the report (see :func:`build_report`) and write it to ``path``.

    Only a regular file or a new path is written, never one of ``inputs``;
    the file is replaced at the end, so a failure leaves any old one intact.
    """
    from gaussmix._files import atomic_write, check_output_path

    check_output_path(path, inputs, "report")
    text = build_report(X, **kwargs)
    with atomic_write(path, "w", inputs, "report", encoding="utf-8") as handle:
        handle.write(text)
