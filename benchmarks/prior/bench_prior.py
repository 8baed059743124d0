"""What a prior costs: EM with ``prior="default"`` against plain EM, side by side in one run.

    python benchmarks/prior/bench_prior.py [--quick]

For each data set and model, both fits start from the same k-means partition and make the same number of EM
iterations (``tol=0``); the figure is the median time per iteration over three alternating rounds, and their
ratio. Then the default selector (mclust's fourteen models, G = 1..9, emem x 3) on iris with and without the
prior, end to end. One BLAS thread.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_prior import data_sets  # noqa: E402


def per_iteration(X, model, labels, prior, iterations):
    from gaussmix import GaussianMixture

    fit = GaussianMixture(int(labels.max()) + 1, covariance_type=model, prior=prior, init_params=labels, tol=0.0,
                          max_iter=iterations)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit.fit(X)
    return (time.perf_counter() - start) / iterations


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data and one model")
    args = parser.parse_args()
    from sklearn.cluster import KMeans
    from sklearn.datasets import load_iris

    from gaussmix import GaussianMixtureSelector

    sets = data_sets()
    rng = np.random.default_rng(0)
    big = np.concatenate([rng.normal(c, 1.0, (25_000 if not args.quick else 2_500, 8)) for c in (0, 3, 6, 9)])
    cases = {"faithful": sets["faithful"], "diabetes": sets["diabetes"], "synthetic n=100,000 d=8": big}
    models = ("VVV", "EEE", "VVI", "VEV") if not args.quick else ("VVV",)
    print("| data | model | plain EM, ms per iteration | with the prior | ratio |")
    print("| --- | --- | --- | --- | --- |")
    with threadpool_limits(1):
        for name, X in cases.items():
            labels = KMeans(3, n_init=1, random_state=0).fit(X).labels_
            iterations = 200 if len(X) < 10_000 else 20
            for model in models:
                plain, prior = [], []
                for _ in range(3):
                    plain.append(per_iteration(X, model, labels, None, iterations))
                    prior.append(per_iteration(X, model, labels, "default", iterations))
                a, b = statistics.median(plain), statistics.median(prior)
                print(f"| {name} | {model} | {1e3 * a:.3f} | {1e3 * b:.3f} | {b / a:.2f}x |", flush=True)
        X = load_iris().data
        for prior in (None, "default"):
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                selector = GaussianMixtureSelector(range(1, 10 if not args.quick else 4), prior=prior,
                                                   random_state=0).fit(X)
            best = selector.best_params_
            print(f"default selector on iris, prior={prior!r}: {time.perf_counter() - start:.1f} s, chose "
                  f"{best['covariance_type']},{best['n_components']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
