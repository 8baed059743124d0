"""mclust's fourteen models: gaussmix's fit of every (data set, model, K) cell against Mclust's.

    cd benchmarks/starts && Rscript mclust_reference.R && cd ../models && Rscript mclust_models.R   # once
    python benchmarks/models/compare_mclust.py [--init hc] [--n-init 1] [--retry 3] [--data iris faithful ...]

For every row of ``mclust_models.csv`` (Mclust's fit from its default
hierarchical start), gaussmix fits the same model with the same number of
components (tol 1e-8 per row, max_iter 2000, random_state 0, BLAS on one
thread) and counts the cells where its log-likelihood is below Mclust's by
more than max(0.02, 1e-5 |l|), and those whose parameter count differs from
Mclust's. With ``--init hc`` (the default) both start from the same
hierarchical clustering; ``--init emem --n-init 10`` is gaussmix's best
search. ``--retry N`` refits each cell left below Mclust's with
``init_params="emem"``, ``n_init=N``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench_starts import load, single_threaded  # noqa: E402

from gaussmix import GaussianMixture  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init", default="hc")
    parser.add_argument("--n-init", type=int, default=1)
    parser.add_argument("--data", nargs="*", help="data sets (default: all of mclust_models.csv)")
    parser.add_argument("--retry", type=int, default=0, metavar="N",
                        help="refit the cells below Mclust with init_params='emem', n_init=N (0: no)")
    args = parser.parse_args()
    rows = [row for row in csv.DictReader(open(HERE / "mclust_models.csv"))
            if not args.data or row["data"] in args.data]
    warnings.simplefilter("ignore")
    below, reached, counted, other_df, spent = Counter(), Counter(), Counter(), 0, 0.0
    with single_threaded():
        for row in rows:
            X, K, model = load(row["data"]), int(row["G"]), row["model"]
            start = time.perf_counter()
            gm = GaussianMixture(K, covariance_type=model, init_params=args.init, n_init=args.n_init, tol=1e-8,
                                 max_iter=2000, random_state=0).fit(X)
            spent += time.perf_counter() - start
            if row["loglik"] == "NA":
                continue
            ours, theirs = gm.score(X) * X.shape[0], float(row["loglik"])
            counted[row["data"]] += 1
            other_df += gm._n_parameters() != int(row["df"])
            if ours < theirs - max(0.02, 1e-5 * abs(theirs)):
                below[row["data"]] += 1
                line = f"{row['data']:9} {model} K={K}: gaussmix {ours:.3f}, mclust {theirs:.3f}"
                if args.retry:
                    again = GaussianMixture(K, covariance_type=model, init_params="emem", n_init=args.retry,
                                            tol=1e-8, max_iter=2000, random_state=0).fit(X)
                    retried = again.score(X) * X.shape[0]
                    reached[row["data"]] += retried >= theirs - max(0.02, 1e-5 * abs(theirs))
                    line += f"; emem x{args.retry} {retried:.3f}"
                print(line, flush=True)
    print(f"\n{sum(counted.values())} cells that Mclust fits ({len(rows)} in all), {args.init} x{args.n_init}: "
          f"gaussmix below Mclust in {sum(below.values())}, another parameter count in {other_df}; "
          f"{spent:.0f} s")
    if args.retry:
        print(f"emem x{args.retry} reaches Mclust's in {sum(reached.values())} of those {sum(below.values())}")
    for name in counted:
        print(f"  {name:9} {counted[name] - below[name]} of {counted[name]} at least Mclust's")


if __name__ == "__main__":
    main()
