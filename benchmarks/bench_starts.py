"""Starting strategies: how often each reaches the best log-likelihood known for a cell, and at what cost.

    cd benchmarks/starts && Rscript mclust_reference.R     # once: the data sets and mclust's numbers
    python benchmarks/bench_starts.py [--quick]

For every data set of ``starts/data`` (written by the R script), every
structure and K = 1..9, each strategy fits the data (tol 1e-5 per row,
max_iter 1000, random_state 0, BLAS on one thread, one process):

* gaussmix k-means x1, x3 and x10, random rows x10, hc, emem x3 and x10;
* scikit-learn's k-means start x10.

The best known log-likelihood of a cell is the best fit without a collapsed
component among all of these and a long search (random rows x50). A
strategy *reaches* it when its fit has no collapsed component and is within
max(0.02, 1e-5 |best|) of it. mclust's figure (``starts/mclust.csv``, its
default hierarchical start) is judged the same way. Times are the sums over
all cells, relative to scikit-learn's x10; each fit is timed twice in a row
and the shorter time kept (the machine's other load comes and goes).

Where one strategy alone found a cell's best optimum, that strategy reaches
the best known by definition, so the shares flatter the strategies that
define it. The held-out rows (emem x10 and scikit-learn x10 with
random_state 1 and 2) are judged against the same best known without
adding to it: what a new draw of the same strategy reaches.

    python benchmarks/bench_starts.py --variant NAME=VALUE ... [--random-state 1 2 3 4 5]

compares emem x10 with constants of ``gaussmix.em.search`` set against the
default, held out, over several random states: from one state to the next
a cell's search takes another course, and the share moves by a few points.
Without constants it measures the default alone and the best of several of
its searches.
"""

from __future__ import annotations

import argparse
import csv
import functools
import itertools
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE / "starts" / "data"
MCLUST = {"full": "VVV", "tied": "EEE", "diag": "VVI", "spherical": "VII"}
SETTINGS = dict(tol=1e-5, max_iter=1000, random_state=0)
STRATEGIES = {
    "gaussmix k-means x1": dict(init_params="kmeans", n_init=1),
    "gaussmix k-means x3": dict(init_params="kmeans", n_init=3),
    "gaussmix k-means x10": dict(init_params="kmeans", n_init=10),
    "gaussmix random rows x10": dict(init_params="random_from_data", n_init=10),
    "gaussmix hc": dict(init_params="hc", n_init=1),
    "gaussmix emem x3": dict(init_params="emem", n_init=3),
    "gaussmix emem x10": dict(init_params="emem", n_init=10),
}
SKLEARN = "scikit-learn k-means x10"
LONG_SEARCH = dict(init_params="random_from_data", n_init=50)
#: Judged against the best known without adding to it (see the module docstring).
HELD_OUT = {
    "held out: gaussmix emem x10, random_state 1": dict(init_params="emem", n_init=10, random_state=1),
    "held out: gaussmix emem x10, random_state 2": dict(init_params="emem", n_init=10, random_state=2),
}
HELD_OUT_SKLEARN = {"held out: scikit-learn k-means x10, random_state 1": 1,
                    "held out: scikit-learn k-means x10, random_state 2": 2}
REPEATS = 2  # timings: the shortest of this many fits


@functools.cache
def load(name: str) -> np.ndarray:
    """Data set ``name`` of ``starts/data`` as a 2-d array."""
    X = np.loadtxt(DATA / f"{name}.csv", delimiter=",", skiprows=1)
    return X[:, None] if X.ndim == 1 else X


def collapsed(structure: str, weights, means, covariances, X) -> bool:
    """Whether a fit has a component whose variance is only the regularisation in some direction."""
    from gaussmix.covariance import get_structure
    from gaussmix.em.params import MixtureParams
    from gaussmix.em.scale import DataScale, collapsed_components

    s = get_structure(structure)
    params = MixtureParams(np.asarray(weights, float), np.asarray(means, float), np.asarray(covariances, float),
                           s.layout.precisions_cholesky(np.asarray(covariances, float)))
    scale = DataScale.from_moments(X.mean(axis=0), X.var(axis=0), 1e-6, np.float64)
    return bool(collapsed_components(s, params, scale))


def timed(fit, repeats: int = 1):
    """``fit()``'s result (a fitted model, or None where it raised ValueError) and its shortest time."""
    seconds, model = math.inf, None
    for _ in range(repeats):
        begin = time.perf_counter()
        try:
            model = fit()
        except ValueError:
            model = None
        seconds = min(seconds, time.perf_counter() - begin)
    return model, seconds


def fit_gaussmix(X, structure, k, options, repeats: int = 1):
    from gaussmix import GaussianMixture

    model, seconds = timed(lambda: GaussianMixture(k, covariance_type=structure, **{**SETTINGS, **options}).fit(X),
                           repeats)
    if model is None:
        return math.nan, True, seconds
    return model.score(X) * X.shape[0], bool(model.collapsed_components_.size), seconds


def fit_sklearn(X, structure, k, repeats: int = 1, random_state: int = 0):
    from sklearn.mixture import GaussianMixture

    model, seconds = timed(lambda: GaussianMixture(k, covariance_type=structure, n_init=10, **{
        **SETTINGS, "random_state": random_state}).fit(X), repeats)
    if model is None:
        return math.nan, True, seconds
    bad = collapsed(structure, model.weights_, model.means_, model.covariances_, X)
    return model.score(X) * X.shape[0], bad, seconds


def mclust_reference() -> dict:
    table = {}
    with open(HERE / "starts" / "mclust.csv") as handle:
        for row in csv.DictReader(handle):
            value = float(row["loglik"]) if row["loglik"] not in ("NA", "") else math.nan
            table[(row["data"], row["model"], int(row["G"]))] = value
    return table


def single_threaded():
    """A context in which every thread pool the benchmark uses runs one thread.

    threadpoolctl limits the libraries loaded when the context is entered,
    so scikit-learn (its OpenMP runtime) and SciPy (its own OpenBLAS) are
    loaded first; otherwise they would run two threads each, and their
    threads, still spinning after a fit, would slow the next one.
    """
    import scipy.linalg  # noqa: F401
    import sklearn.mixture  # noqa: F401
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def main() -> None:

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="K = 1..4 and two structures only")
    parser.add_argument("--report", action="store_true", help="print the tables of results/starts.json again")
    parser.add_argument("--budgets", action="store_true",
                        help="larger emem searches against the best known of results/starts.json")
    parser.add_argument("--variant", nargs="*", metavar="NAME=VALUE",
                        help="emem x10 with these module constants of gaussmix.em.search against the default, "
                             "held out, on the cells of results/starts.json (none: the default alone, and the "
                             "best of several of its searches)")
    parser.add_argument("--random-state", type=int, nargs="+", default=[1, 2, 3, 4, 5],
                        help="for --variant (default 1 2 3 4 5: one random state decides too little)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.report:
        print_tables(json.loads((HERE / "results" / "starts.json").read_text()))
        return
    if args.budgets:
        budgets()
        return
    if args.variant is not None:
        variant(dict(item.split("=", 1) for item in args.variant), args.random_state)
        return
    if not DATA.is_dir():
        raise SystemExit(f"no data sets in {DATA}: run 'Rscript mclust_reference.R' in {DATA.parent} first")
    reference = mclust_reference()
    structures = ("full", "spherical") if args.quick else tuple(MCLUST)
    counts = range(1, 5) if args.quick else range(1, 10)
    cells = []
    with single_threaded():
        for path in sorted(DATA.glob("*.csv")):
            X = load(path.stem)
            for structure in structures:
                for k in counts:
                    results = {name: fit_gaussmix(X, structure, k, options, REPEATS)
                               for name, options in STRATEGIES.items()}
                    results[SKLEARN] = fit_sklearn(X, structure, k, REPEATS)
                    long = fit_gaussmix(X, structure, k, LONG_SEARCH)
                    sound = [v for v, bad, _ in [*results.values(), long] if not bad and math.isfinite(v)]
                    if not sound:
                        continue
                    best = max(sound)
                    results.update({name: fit_gaussmix(X, structure, k, options, REPEATS)
                                    for name, options in HELD_OUT.items()})
                    results.update({name: fit_sklearn(X, structure, k, REPEATS, seed)
                                    for name, seed in HELD_OUT_SKLEARN.items()})
                    mclust = reference.get((path.stem, MCLUST[structure], k), math.nan)
                    cells.append({"data": path.stem, "structure": structure, "K": k, "best": best,
                                  "mclust": mclust, **{n: list(r) for n, r in results.items()}})
                    print(f"{path.stem:10s} {structure:9s} K={k}: best {best:.3f}  " + "  ".join(
                        f"{n.split(' ', 1)[1]} {r[0]:.2f}{'*' if r[1] else ''}" for n, r in results.items()
                        if n in STRATEGIES or n == SKLEARN), flush=True)

    summary = summarise(cells)
    with single_threaded():
        selectors = selector_times(structures, counts)
    out = HERE / "results" / ("starts-quick.json" if args.quick else "starts.json")
    out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "settings": SETTINGS, "cells": cells,
                               "summary": summary, "selectors": selectors}, indent=1))
    print_tables({"cells": cells, "summary": summary, "selectors": selectors})
    print(f"\nwritten to {out}")


def reaches(value, bad, best) -> bool:
    """Whether a fit reaches (or beats) the best known log-likelihood ``best`` of its cell."""
    return (not bad) and math.isfinite(value) and value >= best - max(0.02, 1e-5 * abs(best))


def summarise(cells) -> dict:
    summary = {}
    names = [n for n in cells[0] if isinstance(cells[0][n], list)]
    sklearn_time = sum(c[SKLEARN][2] for c in cells)

    def row(name):
        hit = sum(reaches(c[name][0], c[name][1], c["best"]) for c in cells)
        return {"reached": hit, "cells": len(cells), "share": hit / len(cells),
                "time_vs_sklearn_x10": sum(c[name][2] for c in cells) / sklearn_time}

    for name in names:
        if not name.startswith("held out"):
            summary[name] = row(name)
    known = [c for c in cells if math.isfinite(c["mclust"])]
    summary["mclust (hc start)"] = {"reached": sum(reaches(c["mclust"], False, c["best"]) for c in known),
                                    "cells": len(known),
                                    "share": sum(reaches(c["mclust"], False, c["best"]) for c in known) / len(known),
                                    "time_vs_sklearn_x10": math.nan}
    for name in names:
        if name.startswith("held out"):
            summary[name] = row(name)
    return summary


def print_tables(results: dict) -> None:
    cells, summary, selectors = results["cells"], results["summary"], results["selectors"]
    print(f"\n{len(cells)} cells ({len({c['data'] for c in cells})} data sets)\n")
    print("| strategy | reaches the best known | time relative to scikit-learn x10 |")
    print("|---|---|---|")
    for name, row in summary.items():
        t = "—" if math.isnan(row["time_vs_sklearn_x10"]) else f"{row['time_vs_sklearn_x10']:.2f}"
        print(f"| {name} | {row['share']:.0%} ({row['reached']} of {row['cells']}) | {t} |")
    print("\nOne fit with the hierarchical start against one k-means start (summed over each data set's cells):\n")
    print("| data | rows | k-means x1 (s) | hc (s) | ratio |")
    print("|---|---:|---:|---:|---:|")
    totals = [0.0, 0.0]
    for data in sorted({c["data"] for c in cells}):
        mine = [c for c in cells if c["data"] == data]
        kmeans = sum(c["gaussmix k-means x1"][2] for c in mine)
        hc = sum(c["gaussmix hc"][2] for c in mine)
        rows = next(r["rows"] for r in selectors["data"] if r["data"] == data)
        totals = [totals[0] + kmeans, totals[1] + hc]
        print(f"| {data} | {rows} | {kmeans:.2f} | {hc:.2f} | {hc / kmeans:.2f} |")
    print(f"| all | | {totals[0]:.2f} | {totals[1]:.2f} | {totals[1] / totals[0]:.2f} |")
    print("\n| data | rows | selector, k-means x1 (s) | selector, hc (s) | ratio | hierarchy alone (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in selectors["data"]:
        print(f"| {row['data']} | {row['rows']} | {row['kmeans']:.2f} | {row['hc']:.2f} | "
              f"{row['hc'] / row['kmeans']:.2f} | {row['hierarchy']:.2f} |")
    ratio = selectors["hc"] / selectors["kmeans"]
    print(f"| all | | {selectors['kmeans']:.2f} | {selectors['hc']:.2f} | {ratio:.2f} | |")


#: Larger searches (``--budgets``), each against the best known of the main run's cells: how the share
#: reached grows with the work ``emem`` does. The last continues every start to convergence (module
#: constants of :mod:`gaussmix.em.search`), i.e. k-means and 49 random-row starts run in full, then
#: split-and-merge moves and random swaps.
BUDGETS = {
    "emem x10": (dict(init_params="emem", n_init=10), {}),
    "emem x30": (dict(init_params="emem", n_init=30), {}),
    "emem x100": (dict(init_params="emem", n_init=100), {}),
    "emem x50, every start run to convergence": (dict(init_params="emem", n_init=50),
                                                 {"SHORT_EM_ITERATIONS": 1000, "SHORT_EM_TOL": 1e-5}),
}


def budgets() -> None:
    """Run :data:`BUDGETS` on the cells of ``results/starts.json``; write ``results/starts-budgets.json``."""
    import gaussmix.em.search as search_module

    results = json.loads((HERE / "results" / "starts.json").read_text())
    cells = results["cells"]
    sklearn_time = sum(c[SKLEARN][2] for c in cells)
    rows = {}
    with single_threaded():
        for name, (options, constants) in BUDGETS.items():
            saved = {key: getattr(search_module, key) for key in constants}
            for key, value in constants.items():
                setattr(search_module, key, value)
            try:
                hit = above = 0
                seconds = 0.0
                for cell in cells:
                    value, bad, spent = fit_gaussmix(load(cell["data"]), cell["structure"], cell["K"], options)
                    best = cell["best"]
                    hit += reaches(value, bad, best)
                    above += reaches(value, bad, best) and value > best + max(0.02, 1e-5 * abs(best))
                    seconds += spent
            finally:
                for key, value in saved.items():
                    setattr(search_module, key, value)
            rows[name] = {"reached": hit, "above_best_known": above, "cells": len(cells),
                          "share": hit / len(cells), "time_vs_sklearn_x10": seconds / sklearn_time}
            print(f"{name}: {hit / len(cells):.1%}, {seconds / sklearn_time:.2f}", flush=True)
    out = HERE / "results" / "starts-budgets.json"
    out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "of": results["date"], "budgets": rows},
                              indent=1))
    print("\n| search | reaches the best known | beats it | time relative to scikit-learn x10 |")
    print("|---|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['share']:.0%} ({row['reached']} of {row['cells']}) | {row['above_best_known']} | "
              f"{row['time_vs_sklearn_x10']:.2f} |")
    print(f"\nwritten to {out}")


def variant(constants: dict[str, str], random_states: list[int]) -> None:
    """``emem`` x10 with ``constants`` set in :mod:`gaussmix.em.search`, and the default, alternately on each cell
    of ``results/starts.json`` and for each of ``random_states``: the share of the cells whose best known each
    reaches (held out), per random state and on average, and the time ratio. Without ``constants``, the default
    alone, and the share reached by the best of ``m`` of its searches with different random states."""
    import gaussmix.em.search as search_module

    cells = json.loads((HERE / "results" / "starts.json").read_text())["cells"]
    values = {key: type(getattr(search_module, key))(float(value)) for key, value in constants.items()}
    defaults = {key: getattr(search_module, key) for key in values}
    settings = {"default": defaults, "variant": values} if values else {"default": defaults}
    outcomes = {name: {state: [] for state in random_states} for name in settings}
    seconds = dict.fromkeys(settings, 0.0)
    with single_threaded():
        for state in random_states:
            options = dict(init_params="emem", n_init=10, random_state=state)
            for cell in cells:
                for name, setting in settings.items():
                    for key, value in setting.items():
                        setattr(search_module, key, value)
                    value, bad, spent = fit_gaussmix(load(cell["data"]), cell["structure"], cell["K"], options)
                    outcomes[name][state].append((value, bad))
                    seconds[name] += spent
    for key, value in defaults.items():
        setattr(search_module, key, value)
    for name, by_state in outcomes.items():
        shares = [sum(reaches(v, bad, cell["best"]) for (v, bad), cell in zip(runs, cells)) / len(cells)
                  for runs in by_state.values()]
        print(f"{name}: " + ", ".join(f"{share:.1%}" for share in shares)
              + f" (random states {', '.join(map(str, random_states))}); mean {np.mean(shares):.1%}; "
              f"{seconds[name]:.1f} s")
    if values:
        print(f"time of the variant relative to the default: {seconds['variant'] / seconds['default']:.2f}")
        return
    runs = list(outcomes["default"].values())
    for m in range(2, len(runs) + 1):  # the best of m searches, over every m of the random states
        shares = []
        for group in itertools.combinations(runs, m):
            hits = 0
            for i, cell in enumerate(cells):
                sound = [run[i][0] for run in group if not run[i][1] and math.isfinite(run[i][0])]
                hits += bool(sound) and reaches(max(sound), False, cell["best"])
            shares.append(hits / len(cells))
        print(f"best of {m} searches: {np.mean(shares):.1%}")


def selector_times(structures, counts) -> dict:
    """A selector over every structure and K with hc starts (one hierarchy per data set) against k-means x1."""
    from gaussmix import GaussianMixtureSelector
    from gaussmix.em.hierarchical import agglomerate, svd_transform

    rows, totals = [], {"kmeans": 0.0, "hc": 0.0}
    for path in sorted(DATA.glob("*.csv")):
        X = load(path.stem)
        row = {"data": path.stem, "rows": X.shape[0]}
        for name in ("kmeans", "hc"):
            begin = time.perf_counter()
            GaussianMixtureSelector(n_components=list(counts), covariance_types=list(structures), n_init=1,
                                    init_params=name, **SETTINGS).fit(X)
            row[name] = time.perf_counter() - begin
            totals[name] += row[name]
        begin = time.perf_counter()
        weights = np.ones(X.shape[0])
        agglomerate(svd_transform(X, weights), weights)
        row["hierarchy"] = time.perf_counter() - begin
        rows.append(row)
        print(f"selector {path.stem}: k-means x1 {row['kmeans']:.2f} s, hc {row['hc']:.2f} s", flush=True)
    return {"data": rows, **totals}


if __name__ == "__main__":
    main()
