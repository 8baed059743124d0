"""The commands: each loads its inputs, makes one library call and writes the result."""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from gaussmix._files import check_output_path
from gaussmix._validation import call_unnamed
from gaussmix.cli._io import DataError, ReadOptions, Table, read_table, write_table
from gaussmix.cli._limits import MAX_SAMPLE_VALUES, UsageError
from gaussmix.cli._progress import TerminalProgress

#: Features shown per component in a summary; wider models end the line with "...".
SHOWN_FEATURES = 8


def _options(args: argparse.Namespace) -> ReadOptions:
    return ReadOptions(getattr(args, "columns", None), getattr(args, "header", None),
                       getattr(args, "delimiter", None), getattr(args, "id_column", None))


def _notes(table: Table, args: argparse.Namespace) -> None:
    if not getattr(args, "quiet", False):
        for note in table.notes:
            print(f"gaussmix: note: {note}", file=sys.stderr)


def _read(args: argparse.Namespace, model=None) -> Table:
    names = getattr(model, "feature_names_in_", None)
    table = read_table(args.data, options=_options(args), model_names=None if names is None else list(names))
    _notes(table, args)
    return table


def read_for_model(args: argparse.Namespace, model) -> tuple[np.ndarray, Table]:
    """Rows of ``args.data`` with the model's features: by --columns, by name, or all columns."""
    table = _read(args, model)
    if table.values.shape[1] != model.n_features_in_:
        raise DataError(
            f"{args.data}: {table.values.shape[1]} columns selected, but the model was fitted on "
            f"{model.n_features_in_} features; choose them with --columns"
        )
    return table.values.astype(model.means_.dtype, copy=False), table


def _means_line(names: list[str], mean: np.ndarray) -> str:
    shown = "  ".join(f"{n}={v:.4g}" for n, v in zip(names[:SHOWN_FEATURES], mean[:SHOWN_FEATURES]))
    more = len(names) - SHOWN_FEATURES
    return shown + (f"  ... ({more} more features)" if more > 0 else "")


def fit_summary(model, table: Table, source: str) -> str:
    n, d = table.values.shape
    names = table.names or [f"x{j}" for j in range(d)]
    loglik = float(model.score(table.values)) * n
    status = f"converged after {model.n_iter_} iterations" if model.converged_ else (
        f"did not converge in {model.n_iter_} iterations"
    )
    if isinstance(model.init_params, str) and model.init_params == "emem":
        starts = f" (best of {model.n_init} short-EM starts, refined by split-and-merge moves and random swaps)"
    else:
        starts = f" (best of {model.n_init} starts)" if model.n_init > 1 else ""
    by = ", maximum a posteriori with mclust's default prior" if getattr(model, "prior", None) is not None else ""
    if hasattr(model, "weight_concentration_"):
        active = int(np.sum(model.weights_ > 0.01))
        by += (f", variational Bayes with a {model.weight_concentration_prior_type.replace('_', ' ')} prior; "
               f"{active} with weight above 0.01")
    if getattr(model, "noise_volume_", None) is not None:
        by += f", with a noise component of weight {model.noise_proportion_:.3f}"
    return "\n".join(
        [
            f"fitted {model.n_components} components ({model.covariance_type} covariance{by}) to {n} rows x "
            f"{d} features of {source}",
            f"{status}{starts}",
            f"log-likelihood {loglik:.4f} (mean per row {loglik / n:.6f})   "
            f"BIC {model.bic(table.values):.4f}   AIC {model.aic(table.values):.4f}",
            "  component  weight  mean",
            *(f"  {k:>3}  {model.weights_[k]:6.3f}  {_means_line(names, model.means_[k])}"
              for k in range(model.n_components)),
        ]
    )


def _engine(args: argparse.Namespace) -> tuple[str, str | None]:
    engine, device = getattr(args, "engine", None), getattr(args, "device", None)
    if device is not None and engine not in (None, "torch"):
        raise UsageError(f"--device applies to the torch engine only, not --engine {engine}")
    return engine or ("torch" if device is not None else "numpy"), device


def _check_bayesian(args: argparse.Namespace) -> None:
    """A variational fit has its own prior and no noise component."""
    if getattr(args, "bayesian", False) and (args.prior or args.noise):
        raise UsageError("--bayesian fits a variational posterior with its own priors: leave out --prior and --noise")


def _selector(args: argparse.Namespace, n_init: int):
    from gaussmix import BayesianGaussianMixture, GaussianMixtureSelector
    from gaussmix.covariance import SCIKIT_LEARN_STRUCTURES

    _check_bayesian(args)
    engine, device = _engine(args)
    bayesian = getattr(args, "bayesian", False)
    return GaussianMixtureSelector(
        args.select,
        estimator=BayesianGaussianMixture() if bayesian else None,
        covariance_types=args.structures or (SCIKIT_LEARN_STRUCTURES if bayesian else None),
        init_params="kmeans" if bayesian else "emem",
        criterion=args.criterion,
        n_init=n_init,
        prior=args.prior,
        noise=True if args.noise else None,
        random_state=args.seed,
        verbose=int(not args.quiet and sys.stderr.isatty()),
        engine=engine,
        device=device,
    )


def _candidates_summary(selector, limit: int = 5) -> str:
    records = selector.results_
    records = records.to_dict("records") if hasattr(records, "to_dict") else list(records)
    key = "cv_log_likelihood" if selector.criterion == "cv" else selector.criterion
    fitted = [r for r in records if not isinstance(r["error"], str)]
    fitted.sort(key=lambda r: -r[key] if selector.criterion == "cv" else r[key])
    failed = [r for r in records if isinstance(r["error"], str)]
    lines = [f"best of {len(records)} candidates by {selector.criterion.upper()} "
             f"({len(failed)} could not be fitted):"]
    reasons: dict[str, list[str]] = {}
    for r in failed:
        reasons.setdefault(r["error"], []).append(f"{r['n_components']} {r['covariance_type']}")
    for reason, which in reasons.items():
        listed = ", ".join(which[:6]) + (f" and {len(which) - 6} more" if len(which) > 6 else "")
        lines.append(f"  not fitted ({listed}): {reason}")
    lines.append(f"  {'components':>10}  {'covariance':<10}  {key}")
    for r in fitted[:limit]:
        lines.append(f"  {r['n_components']:>10}  {r['covariance_type']:<10}  {r[key]:.4f}")
    return "\n".join(lines)


def cmd_fit(args: argparse.Namespace) -> int:
    from gaussmix import GaussianMixture

    if args.select and args.components is not None:
        raise UsageError("give either -k/--components or --select, not both")
    if not args.select and (args.structures or args.criterion != "bic"):
        raise UsageError("--structures and --criterion need --select")
    engine, device = _engine(args)
    check_output_path(args.output, [args.data], "model file")
    table = _read(args)
    if args.select:
        selector = _selector(args, args.n_init).fit(table.values)
        model = selector.best_estimator_
        summary = _candidates_summary(selector) + "\n" + fit_summary(model, table, args.data)
        return _save_fitted(model, table, summary, args)
    progress = TerminalProgress(args.n_init, args.max_iter, force=False) if not args.quiet else None
    _check_bayesian(args)
    common = dict(n_components=args.components or 1, covariance_type=args.covariance, n_init=args.n_init,
                  max_iter=args.max_iter, tol=args.tol, reg_covar=args.reg_covar, random_state=args.seed,
                  callback=progress, engine=engine, device=device)
    if args.bayesian:
        from gaussmix import BayesianGaussianMixture

        model = BayesianGaussianMixture(init_params="kmeans" if args.init == "emem" else args.init, **common)
    else:
        model = GaussianMixture(init_params=args.init, prior=args.prior, noise=args.noise, **common)
    try:
        model.fit(table.values)
    finally:
        if progress is not None:
            progress.close()
    model.set_params(callback=None, engine="auto", device=None)  # the saved model predicts anywhere
    return _save_fitted(model, table, fit_summary(model, table, args.data), args)


def _save_fitted(model, table: Table, summary: str, args: argparse.Namespace) -> int:
    if table.names is not None:  # saved, so that later commands find the columns by name
        model.feature_names_in_ = np.asarray(table.names, dtype=object)
    from gaussmix._persistence import save_model

    save_model(model, args.output)
    if not args.quiet:
        print(summary)
        print(f"model written to {args.output}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from gaussmix.report import write_report

    if not args.output.lower().endswith((".html", ".htm")):
        raise UsageError(f"{args.output}: the report is HTML; give a file name ending in .html")
    check_output_path(args.output, [args.data], "report")
    table = _read(args)
    selector = _selector(args, args.n_init)
    write_report(args.output, table.values, selector=selector, feature_names=table.names,
                 source=os.path.basename(args.data), n_anomalies=args.anomalies, inputs=[args.data])
    if not args.quiet:
        best = selector.best_params_
        print(f"chose {best['n_components']} components with {best['covariance_type']} covariance "
              f"by {args.criterion.upper()}; report written to {args.output}")
    return 0


def _load(args: argparse.Namespace):
    from gaussmix import load

    return load(args.model)


def cmd_predict(args: argparse.Namespace) -> int:
    inputs = [args.model, args.data]
    if args.output not in (None, "-"):
        check_output_path(args.output, inputs, "predictions")
    model = _load(args)
    X, table = read_for_model(args, model)
    proba = call_unnamed(model.predict_proba, X)
    columns: dict[str, np.ndarray] = {}
    if table.ids is not None:
        columns[table.id_name or "id"] = table.ids
    labels = np.argmax(proba, axis=1)
    noisy = proba.shape[1] > model.n_components  # the noise's column last; its rows are labelled -1
    columns.update({
        "label": np.where(labels == model.n_components, -1, labels) if noisy else labels,
        "uncertainty": 1.0 - np.max(proba, axis=1),
        "log_density": call_unnamed(model.score_samples, X),
    })
    columns.update({f"prob_{k}": proba[:, k] for k in range(model.n_components)})
    if noisy:
        columns["prob_noise"] = proba[:, -1]
    write_table(args.output, columns, inputs)
    if args.output not in (None, "-"):
        print(f"{len(X)} rows written to {args.output}", file=sys.stderr)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    model = _load(args)
    X, _ = read_for_model(args, model)
    scores = call_unnamed(model.score_samples, X)
    n = len(X)
    print(f"rows                  {n}")
    print(f"log-likelihood        {scores.sum():.6f}")
    print(f"mean per row          {scores.mean():.6f}")
    print(f"BIC                   {call_unnamed(model.bic, X):.6f}")
    print(f"AIC                   {call_unnamed(model.aic, X):.6f}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:

    if args.output not in (None, "-"):
        check_output_path(args.output, [args.model], "sample")
    model = _load(args)
    if args.n * model.n_features_in_ > MAX_SAMPLE_VALUES:
        raise UsageError(
            f"N={args.n:,} rows of {model.n_features_in_} features is more than {MAX_SAMPLE_VALUES:,} values; "
            f"draw at most {MAX_SAMPLE_VALUES // model.n_features_in_:,} rows at a time"
        )
    if args.seed is not None:
        model.set_params(random_state=args.seed)
    X, labels = model.sample(args.n)
    names = getattr(model, "feature_names_in_", None)
    names = [str(n) for n in names] if names is not None else [f"x{j}" for j in range(X.shape[1])]
    columns = {name: X[:, j] for j, name in enumerate(names)}
    if "component" in columns:
        raise DataError("the model has a feature named 'component', which the output uses for labels")
    columns["component"] = labels
    write_table(args.output, columns, [args.model])
    if args.output not in (None, "-"):
        print(f"{args.n} rows written to {args.output}", file=sys.stderr)
    return 0


PLOT_KINDS = ("auto", "density", "ellipses", "anomalies", "density1d")


def cmd_plot(args: argparse.Namespace) -> int:
    from gaussmix import plot
    from gaussmix._files import atomic_write

    check_output_path(args.output, [args.model, args.data], "figure")
    model = _load(args)
    X, _ = read_for_model(args, model)
    kind = args.kind
    if kind == "auto":
        kind = "density1d" if model.n_features_in_ == 1 else "density"
    features = args.features
    if kind == "density1d":
        figure = plot.density_1d(model, X, feature=features[0] if features else 0)
    elif kind == "density":
        figure = plot.density_contours(model, X, features=features)
    elif kind == "ellipses":
        figure = plot.ellipses(model, X, features=features)
    else:
        figure = plot.anomalies(model, X, args.threshold, features=features)
    suffix = os.path.splitext(args.output)[1].lower().lstrip(".")
    supported = figure.canvas.get_supported_filetypes()
    if suffix not in supported:
        raise DataError(f"{args.output}: unsupported figure type {suffix!r}; use one of {', '.join(sorted(supported))}")
    with atomic_write(args.output, "wb", [args.model, args.data], "figure") as handle:
        figure.savefig(handle, dpi=args.dpi, format=suffix)
    print(f"figure written to {args.output}", file=sys.stderr)
    return 0
