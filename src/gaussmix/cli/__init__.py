"""The ``gaussmix`` command line.

Each command loads its inputs, makes one library call and writes the result.
Every failure is one line on standard error and a non-zero exit status: 1
for a problem with the inputs, 2 for a usage error, 3 for an internal error
(set ``GAUSSMIX_DEBUG=1`` to see its traceback), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import warnings

from gaussmix.cli._limits import MAX_DPI, MAX_SAMPLE_VALUES, MAX_SELECT, UsageError

__all__ = ["MAX_DPI", "MAX_SAMPLE_VALUES", "MAX_SELECT", "UsageError", "build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _positive_int(text: str, limit: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    if limit is not None and value > limit:
        raise argparse.ArgumentTypeError(f"expected at most {limit:,}, got {value:,}")
    return value


def _at_most(limit: int):
    def integer(text: str) -> int:
        return _positive_int(text, limit)

    return integer


def _finite_float(text: str, minimum: float | None = None) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    if minimum is not None and value < minimum:
        raise argparse.ArgumentTypeError(f"expected a number >= {minimum:g}, got {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    return _finite_float(text, 0.0)


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"expected a seed from 0 to 2**32 - 1, got {value}")
    return value


def _delimiter(text: str) -> str:
    from gaussmix.cli._io import parse_delimiter

    try:
        return parse_delimiter(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None




def _component_range(text: str) -> list[int]:
    """Component counts from '1-9', '2,3,5' or '4' (at most MAX_SELECT of them)."""
    counts: set[int] = set()
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            first, last = 0, -1
        if first < 1 or last < first:
            raise argparse.ArgumentTypeError(f"expected component counts like 1-9, 2,3,5 or 4, got {text!r}")
        if last - first + 1 + len(counts) > MAX_SELECT:
            raise argparse.ArgumentTypeError(
                f"{text!r} names more than {MAX_SELECT:,} component counts; give a range such as 1-9"
            )
        counts.update(range(first, last + 1))
    return sorted(counts)


def _structures() -> list[str]:
    """The covariance structures' names and aliases, from the registry (reading it imports no numerical code)."""
    from gaussmix.covariance import available_structures, structure_aliases

    return [*available_structures(), *structure_aliases()]


def _selection_options(sub, default_range: str | None) -> None:
    structures = _structures()
    sub.add_argument(
        "--select", type=_component_range, default=_component_range(default_range) if default_range else None,
        metavar="RANGE",
        help="choose the number of components from RANGE (e.g. 1-9) and the structure by --criterion"
        + (f" (default {default_range})" if default_range else ""),
    )
    sub.add_argument("--structures", nargs="+", choices=structures, default=None, metavar="TYPE",
                     help="covariance structures to compare with --select, by mclust's or scikit-learn's names "
                     "(default: mclust's fourteen models, EII VII EEI VEI EVI VVI EEE VEE EVE VVE EEV VEV EVV VVV, "
                     "or E and V for one column; any of " + ", ".join(structures) + ")")
    sub.add_argument("--criterion", choices=["bic", "aic", "icl", "cv"], default="bic",
                     help="how --select ranks candidates (default bic; cv: held-out log-likelihood)")


def _model_options(sub) -> None:
    """What is fitted besides the Gaussians' maximum likelihood: a prior, a noise component, a variational
    posterior."""
    sub.add_argument("--prior", choices=["default"], default=None,
                     help="fit by maximum a posteriori under mclust's default conjugate prior (priorControl()): "
                          "no singular optima on small or discrete data; BIC is the log-likelihood's at the "
                          "posterior mode (default: maximum likelihood)")
    sub.add_argument("--bayesian", action="store_true",
                     help="fit scikit-learn's BayesianGaussianMixture instead (variational Bayes with a Dirichlet "
                          "process prior on the weights: -k is an upper bound, components the data do not need "
                          "get weights near 0; with --select, over scikit-learn's four structures by default; "
                          "its init is kmeans unless --init is given)")
    sub.add_argument("--noise", action="store_true",
                     help="fit a uniform noise component with the Gaussians (mclust's noise): rows in no cluster are "
                          "labelled -1 instead of pulling the clusters; the first guess of the noise is a "
                          "nearest-neighbour density rule")


def _data_options(sub, ids: bool = False) -> None:
    sub.add_argument("--columns", nargs="+", metavar="COL",
                     help="columns to use, by name or 0-based index (default: all, or the model's features)")
    sub.add_argument("--header", action=argparse.BooleanOptionalAction, default=None,
                     help="whether the first line of a text file names the columns (default: it does when any "
                          "of its cells is not a number)")
    sub.add_argument("--delimiter", type=_delimiter, default=None, metavar="CHAR",
                     help="field separator of a text file: a character, or comma, tab, semicolon, space, pipe "
                          "(default: tab for .tsv, else comma)")
    if ids:
        sub.add_argument("--id-column", default=None, metavar="COL",
                         help="a column that identifies rows (name or index), copied to the output (default: "
                              "R's unnamed row-name column when present)")


def build_parser() -> argparse.ArgumentParser:
    from gaussmix._version import __version__

    parser = _Parser(prog="gaussmix", description="Gaussian mixture models: fit, predict, score, sample, plot.")
    parser.add_argument("--version", action="version", version=f"gaussmix {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, description: str):
        return commands.add_parser(name, help=help, description=description)

    demo = command(
        "demo",
        "reproduce the tutorial on built-in data and draw its figures",
        "Fit a 3-component full-covariance mixture to built-in synthetic data (k-means init), show "
        "responsibilities and the BIC for 1-6 components, and write the figures (density contours, BIC "
        "curve, covariance ellipses, EM progress), the data, the model and a text summary to a folder.",
    )
    demo.add_argument("--out", default="gaussmix-demo", metavar="DIR", help="output folder (default: gaussmix-demo)")
    demo.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")

    data_help = ("data file: .csv, .tsv (header row optional; .gz compressed too; - reads CSV from standard "
                 "input), .parquet or .npy")
    model_help = "model file written by 'gaussmix fit'"
    structures = _structures()
    from gaussmix.covariance import DEFAULT_STRUCTURE
    from gaussmix.em import INIT_METHODS
    from gaussmix.engines import ENGINES

    fit = command("fit", "fit a mixture to a data file and save the model",
                  "Fit a Gaussian mixture by EM and write the model file; print weights, means, "
                  "log-likelihood, BIC, AIC, iterations and convergence.")
    fit.add_argument("data", metavar="DATA", help=data_help)
    fit.add_argument("-o", "--output", required=True, metavar="MODEL", help="model file to write (e.g. model.npz)")
    _data_options(fit)
    fit.add_argument("-k", "--components", type=_positive_int, default=None, metavar="K",
                     help="number of components (default 1; see also --select)")
    fit.add_argument("--covariance", default=DEFAULT_STRUCTURE, choices=structures,
                     help=f"covariance structure (default {DEFAULT_STRUCTURE})")
    fit.add_argument("--init", default="emem", choices=INIT_METHODS,
                     help="initialisation (default emem: short-EM multi-starts refined by split-and-merge moves and "
                          "random swaps; "
                          "kmeans is scikit-learn's; see GaussianMixture)")
    fit.add_argument("--n-init", type=_positive_int, default=3, metavar="N", help="number of starts (default 3)")
    fit.add_argument("--max-iter", type=_positive_int, default=100, metavar="N", help="EM iterations (default 100)")
    fit.add_argument("--tol", type=_non_negative_float, default=1e-3, help="convergence tolerance (default 1e-3)")
    fit.add_argument("--reg-covar", type=_non_negative_float, default=1e-6,
                     help="covariance regularisation, relative to each feature's variance (default 1e-6)")
    fit.add_argument("--seed", type=_seed, default=None, help="random seed (default: none)")
    fit.add_argument("--engine", default=None, choices=[name for name in ENGINES if name != "auto"],
                     help="where EM runs: numpy (the default without --device), torch (needs gaussmix[torch]; "
                          "the default with --device) or dask (needs gaussmix[dask]; blocks on the local threads)")
    fit.add_argument("--device", default=None, metavar="DEVICE",
                     help="PyTorch device for the torch engine, e.g. cpu, cuda or cuda:1 (default: cpu)")
    fit.add_argument("-q", "--quiet", action="store_true", help="print nothing and show no progress")
    _model_options(fit)
    _selection_options(fit, None)

    predict = command("predict", "labels, responsibilities and log-density for each row",
                      "Write, for each row of DATA, the most probable component (label), its uncertainty "
                      "(1 minus the largest responsibility), the log-density (log_density) and the "
                      "responsibility of each component (prob_0, prob_1, ...), after the --id-column if any.")
    predict.add_argument("model", metavar="MODEL", help=model_help)
    predict.add_argument("data", metavar="DATA", help=data_help)
    predict.add_argument("-o", "--output", default=None, metavar="OUT",
                         help="output file: .csv, .tsv, .parquet or .npy (default: CSV on standard output)")
    _data_options(predict, ids=True)

    score = command("score", "log-likelihood, BIC and AIC of a model on data",
                    "Print the number of rows, the total and mean log-likelihood, BIC and AIC of MODEL on DATA.")
    score.add_argument("model", metavar="MODEL", help=model_help)
    score.add_argument("data", metavar="DATA", help=data_help)
    _data_options(score)

    sample = command("sample", "draw rows from a model",
                     "Draw N rows from MODEL; the output has the model's features and a 'component' column. "
                     f"At most {MAX_SAMPLE_VALUES:,} values (N times the number of features).")
    sample.add_argument("model", metavar="MODEL", help=model_help)
    sample.add_argument("n", type=_at_most(MAX_SAMPLE_VALUES), metavar="N", help="number of rows")
    sample.add_argument("-o", "--output", default=None, metavar="OUT",
                        help="output file: .csv, .tsv, .parquet or .npy (default: CSV on standard output)")
    sample.add_argument("--seed", type=_seed, default=None,
                        help="random seed (default: the seed the model was fitted with, if any)")

    plot = command("plot", "draw a model over data",
                   "Draw MODEL over DATA: density contours (default), covariance ellipses, anomalies below a "
                   "log-density threshold, or a 1-D density; pairs of features for more than two.")
    plot.add_argument("model", metavar="MODEL", help=model_help)
    plot.add_argument("data", metavar="DATA", help=data_help)
    plot.add_argument("-o", "--output", required=True, metavar="FIG", help="figure file (.png, .pdf, .svg ...)")
    plot.add_argument("--kind", default="auto", choices=["auto", "density", "ellipses", "anomalies", "density1d"],
                      help="what to draw (default: density, or density1d for one feature)")
    _data_options(plot)
    plot.add_argument("--features", nargs="+", type=int, metavar="J",
                      help="which of the model's features to draw (0-based; default: all pairs of the first five)")
    plot.add_argument("--threshold", type=_finite_float, default=None,
                      help="log-density threshold for --kind anomalies (default: the 2%% quantile of DATA)")
    plot.add_argument("--dpi", type=_at_most(MAX_DPI), default=110,
                      help=f"resolution of raster figures, at most {MAX_DPI} (default 110)")

    report = command("report", "a one-file HTML report: selection, model, pictures, anomalies",
                     "Choose a mixture for DATA and write one self-contained HTML file: a data summary, the "
                     "table and curves of every candidate, the chosen model's parameters, density contours, "
                     "covariance ellipses, an uncertainty view and the most anomalous rows.")
    report.add_argument("data", metavar="DATA", help=data_help)
    report.add_argument("-o", "--output", required=True, metavar="HTML", help="report file to write (.html)")
    _data_options(report)
    _selection_options(report, "1-9")
    _model_options(report)
    report.add_argument("--n-init", type=_positive_int, default=3, metavar="N",
                        help="starts per candidate (default 3)")
    report.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
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


def _quiet_stdout() -> None:
    """Send what is left of standard output nowhere (its reader has gone), so exiting does not fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # pragma: no cover - stdout replaced by a non-file
        pass


#: Exit status after the reader of standard output went away (as a process killed by SIGPIPE).
BROKEN_PIPE = 128 + 13


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    prefix = f"gaussmix {args.command}"
    previous = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        status = _runner(args.command)(args)
        sys.stdout.flush()  # here, so that a reader that has gone is noticed while it can be handled
        return status
    except BrokenPipeError:
        _quiet_stdout()
        return BROKEN_PIPE
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return 130
    except UsageError as exc:
        print(f"{prefix}: error: {_one_line(exc)} (see '{prefix} --help')", file=sys.stderr)
        return 2
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
