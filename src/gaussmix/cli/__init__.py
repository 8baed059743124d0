"""The ``gaussmix`` command line.

Each command loads its inputs, makes one library call and writes the result.
Every failure is one line on standard error and a non-zero exit status: 1
for a problem with the inputs, 2 for a usage error, 3 for an internal error
(set ``GAUSSMIX_DEBUG=1`` to see its traceback), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _component_range(text: str) -> list[int]:
    """Component counts from '1-9', '2,3,5' or '4'."""
    counts: list[int] = []
    try:
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            first, last = int(low), int(high or low)
            if first < 1 or last < first:
                raise ValueError
            counts.extend(range(first, last + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected component counts like 1-9, 2,3,5 or 4, got {text!r}"
        ) from None
    return sorted(set(counts))


STRUCTURES = ["full", "tied", "diag", "spherical"]


def _selection_options(sub, default_range: str | None) -> None:
    sub.add_argument(
        "--select", type=_component_range, default=_component_range(default_range) if default_range else None,
        metavar="RANGE",
        help="choose the number of components from RANGE (e.g. 1-9) and the structure by --criterion"
        + (f" (default {default_range})" if default_range else ""),
    )
    sub.add_argument("--structures", nargs="+", choices=STRUCTURES, default=None, metavar="TYPE",
                     help="covariance structures to compare with --select (default: all of " + ", ".join(STRUCTURES)
                     + ")")
    sub.add_argument("--criterion", choices=["bic", "aic", "icl", "cv"], default="bic",
                     help="how --select ranks candidates (default bic; cv: held-out log-likelihood)")


def build_parser() -> argparse.ArgumentParser:
    from gaussmix import __version__

    parser = _Parser(prog="gaussmix", description="Gaussian mixture models: fit, predict, score, sample, plot.")
    parser.add_argument("--version", action="version", version=f"gaussmix {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, description: str):
        sub = commands.add_parser(name, help=help, description=description)
        return sub

    demo = command(
        "demo",
        "reproduce the tutorial on built-in data and draw its figures",
        "Fit a 3-component full-covariance mixture to built-in synthetic data (k-means init), show "
        "responsibilities and the BIC for 1-6 components, and write the figures (density contours, BIC "
        "curve, covariance ellipses, EM progress), the data, the model and a text summary to a folder.",
    )
    demo.add_argument("--out", default="gaussmix-demo", metavar="DIR", help="output folder (default: gaussmix-demo)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

    data_help = "data file: .csv, .tsv (header row optional), .parquet or .npy"
    columns_help = "columns to use, by name or 0-based index (default: all, or the model's features)"

    fit = command("fit", "fit a mixture to a data file and save the model",
                  "Fit a Gaussian mixture by EM and write the model file; print weights, means, "
                  "log-likelihood, BIC, AIC, iterations and convergence.")
    fit.add_argument("data", metavar="DATA", help=data_help)
    fit.add_argument("-o", "--output", required=True, metavar="MODEL", help="model file to write (e.g. model.npz)")
    fit.add_argument("--columns", nargs="+", metavar="COL", help=columns_help)
    fit.add_argument("-k", "--components", type=_positive_int, default=None, metavar="K",
                     help="number of components (default 1; see also --select)")
    fit.add_argument("--covariance", default="full", choices=["full", "tied", "diag", "spherical"],
                     help="covariance structure (default full)")
    fit.add_argument("--init", default="kmeans", choices=["kmeans", "k-means++", "random", "random_from_data"],
                     help="initialisation (default kmeans)")
    fit.add_argument("--n-init", type=_positive_int, default=1, metavar="N", help="number of starts (default 1)")
    fit.add_argument("--max-iter", type=_positive_int, default=100, metavar="N", help="EM iterations (default 100)")
    fit.add_argument("--tol", type=float, default=1e-3, help="convergence tolerance (default 1e-3)")
    fit.add_argument("--reg-covar", type=float, default=1e-6,
                     help="covariance regularisation, relative to each feature's variance (default 1e-6)")
    fit.add_argument("--seed", type=int, default=None, help="random seed (default: none)")
    fit.add_argument("--engine", default="numpy", choices=["numpy", "torch", "dask"],
                     help="where EM runs: numpy (default), torch (needs gaussmix[torch]) or dask "
                          "(needs gaussmix[dask]; blocks on the local threads)")
    fit.add_argument("--device", default=None, metavar="DEVICE",
                     help="torch device for --engine torch, e.g. cuda or cuda:1 (default: cpu)")
    fit.add_argument("-q", "--quiet", action="store_true", help="print nothing and show no progress")
    _selection_options(fit, None)

    predict = command("predict", "labels, responsibilities and log-density for each row",
                      "Write, for each row of DATA, the most probable component (label), the log-density "
                      "(log_density) and the responsibility of each component (prob_0, prob_1, ...).")
    predict.add_argument("model", metavar="MODEL", help="model file written by 'gaussmix fit'")
    predict.add_argument("data", metavar="DATA", help=data_help)
    predict.add_argument("-o", "--output", default=None, metavar="OUT",
                         help="output file: .csv, .tsv, .parquet or .npy (default: CSV on standard output)")
    predict.add_argument("--columns", nargs="+", metavar="COL", help=columns_help)

    score = command("score", "log-likelihood, BIC and AIC of a model on data",
                    "Print the number of rows, the total and mean log-likelihood, BIC and AIC of MODEL on DATA.")
    score.add_argument("model", metavar="MODEL", help="model file written by 'gaussmix fit'")
    score.add_argument("data", metavar="DATA", help=data_help)
    score.add_argument("--columns", nargs="+", metavar="COL", help=columns_help)

    sample = command("sample", "draw rows from a model",
                     "Draw N rows from MODEL; the output has the model's features and a 'component' column.")
    sample.add_argument("model", metavar="MODEL", help="model file written by 'gaussmix fit'")
    sample.add_argument("n", type=_positive_int, metavar="N", help="number of rows")
    sample.add_argument("-o", "--output", default=None, metavar="OUT",
                        help="output file: .csv, .tsv, .parquet or .npy (default: CSV on standard output)")
    sample.add_argument("--seed", type=int, default=None, help="random seed (default: the model's)")

    plot = command("plot", "draw a model over data",
                   "Draw MODEL over DATA: density contours (default), covariance ellipses, anomalies below a "
                   "log-density threshold, or a 1-D density; pairs of features for more than two.")
    plot.add_argument("model", metavar="MODEL", help="model file written by 'gaussmix fit'")
    plot.add_argument("data", metavar="DATA", help=data_help)
    plot.add_argument("-o", "--output", required=True, metavar="FIG", help="figure file (.png, .pdf, .svg ...)")
    plot.add_argument("--kind", default="auto", choices=["auto", "density", "ellipses", "anomalies", "density1d"],
                      help="what to draw (default: density, or density1d for one feature)")
    plot.add_argument("--columns", nargs="+", metavar="COL", help=columns_help)
    plot.add_argument("--features", nargs="+", type=int, metavar="J",
                      help="which of the model's features to draw (0-based; default: all pairs of the first five)")
    plot.add_argument("--threshold", type=float, default=None,
                      help="log-density threshold for --kind anomalies (default: the 2%% quantile of DATA)")
    plot.add_argument("--dpi", type=_positive_int, default=110, help="resolution of raster figures (default 110)")
    report = command("report", "a one-file HTML report: selection, model, pictures, anomalies",
                     "Choose a mixture for DATA and write one self-contained HTML file: a data summary, the "
                     "table and curves of every candidate, the chosen model's parameters, density contours, "
                     "covariance ellipses, an uncertainty view and the most anomalous rows.")
    report.add_argument("data", metavar="DATA", help=data_help)
    report.add_argument("-o", "--output", required=True, metavar="HTML", help="report file to write (.html)")
    report.add_argument("--columns", nargs="+", metavar="COL", help=columns_help)
    _selection_options(report, "1-9")
    report.add_argument("--n-init", type=_positive_int, default=3, metavar="N",
                        help="starts per candidate (default 3)")
    report.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    report.add_argument("--anomalies", type=_positive_int, default=10, metavar="N",
                        help="how many of the lowest-density rows to list (default 10)")
    report.add_argument("-q", "--quiet", action="store_true", help="show no progress")
    return parser


def _runner(name: str):
    from gaussmix.cli import _commands

    if name == "demo":
        from gaussmix.cli._demo import run_demo

        return run_demo
    return getattr(_commands, f"cmd_{name}")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"gaussmix: warning: {_one_line(message)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    args = build_parser().parse_args(argv)
    prefix = f"gaussmix {args.command}"
    previous = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        return _runner(args.command)(args)
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, ImportError) as exc:
        print(f"{prefix}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:
        if os.environ.get("GAUSSMIX_DEBUG"):
            raise
        print(
            f"{prefix}: internal error ({type(exc).__name__}: {_one_line(exc)}); "
            "set GAUSSMIX_DEBUG=1 for details",
            file=sys.stderr,
        )
        return 3
    finally:
        warnings.showwarning = previous
