"""gaussmix's default selection (mclust's fourteen models, 1 to 9 components) against Mclust's on each data set.

    cd benchmarks/starts && Rscript mclust_reference.R && cd ../models && Rscript mclust_selection.R   # once
    python benchmarks/models/compare_selection.py [--init emem] [--n-init 3] [--tol 1e-5] [--data ...]

For every row of ``mclust_selection.csv`` (``Mclust(X)`` with its defaults:
the chosen model and number of components, its BIC in mclust's sign),
fits ``GaussianMixtureSelector`` with the given start, number of starts and
tolerance (random_state 0, BLAS on one thread) and prints both choices and
their BIC in gaussmix's sign (lower is better), and the time.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench_starts import load, single_threaded  # noqa: E402

from gaussmix import GaussianMixtureSelector  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init", default="emem")
    parser.add_argument("--n-init", type=int, default=3)
    parser.add_argument("--tol", type=float, default=1e-5)
    parser.add_argument("--data", nargs="*", help="data sets (default: all of mclust_selection.csv)")
    args = parser.parse_args()
    rows = [row for row in csv.DictReader(open(HERE / "mclust_selection.csv"))
            if not args.data or row["data"] in args.data]
    warnings.simplefilter("ignore")
    print("| data | Mclust | its BIC | gaussmix | its BIC | difference | time |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    at_least = 0
    with single_threaded():
        for row in rows:
            X = load(row["data"])
            start = time.perf_counter()
            selector = GaussianMixtureSelector(init_params=args.init, n_init=args.n_init, tol=args.tol,
                                               max_iter=2000, random_state=0).fit(X)
            spent = time.perf_counter() - start
            best = selector.best_params_
            ours, theirs = float(selector.results_["bic"].min()), -float(row["bic"])
            at_least += ours <= theirs + 1e-6 * abs(theirs)
            print(f"| {row['data']} | {row['model']},{row['G']} | {theirs:.3f} | {best['covariance_type']},"
                  f"{best['n_components']} | {ours:.3f} | {ours - theirs:+.3f} | {spent:.0f} s |", flush=True)
    print(f"\n{args.init} x{args.n_init}, tol {args.tol:g}: best BIC at least as good as Mclust's on {at_least} of "
          f"{len(rows)} data sets")


if __name__ == "__main__":
    main()
