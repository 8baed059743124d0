"""What a noise component costs: EM with ``noise=True`` against plain EM, side by side in one run.

    python benchmarks/noise/bench_noise.py [--quick]

Per iteration: both fits start from the same partition (the noise fit's first guess of the noise rows is
labelled -1 in it) and make the same number of EM iterations (``tol=0``); the median time per iteration over
three alternating rounds, and their ratio. End to end: ``GaussianMixture(K, noise=True)`` with its defaults
(the nearest-neighbour first guess, k-means starts) against ``GaussianMixture(K)``. One BLAS thread.
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
from compare_noise import data_set  # noqa: E402


def timed(function) -> float:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        function()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller synthetic data")
    args = parser.parse_args()
    from sklearn.cluster import KMeans

    from gaussmix import GaussianMixture
    from gaussmix.em.noise import noise_guess

    rng = np.random.default_rng(0)
    n = 25_000 if not args.quick else 2_500
    big = np.vstack([rng.normal(c, 1.0, (n, 4)) for c in (0, 4, 8)] + [rng.uniform(-4, 12, (n // 5, 4))])
    cases = {"chevron": (data_set("chevron")[0], 2), "outliers": (data_set("outliers")[0], 2),
             f"synthetic n={len(big):,} d=4": (big, 3)}
    print("| data | model | plain EM, ms per iteration | with the noise | ratio | end to end, plain | "
          "with the noise | ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    with threadpool_limits(1):
        for name, (X, K) in cases.items():
            guess = noise_guess(X)
            labels = KMeans(K, n_init=1, random_state=0).fit(X[~guess]).labels_
            start = np.full(len(X), -1)
            start[~guess] = labels
            plain_start = np.where(guess, KMeans(K, n_init=1, random_state=0).fit(X).predict(X), start)
            iterations = 100 if len(X) < 10_000 else 10
            for model in ("VVV", "EEE"):
                plain, noisy, plain_all, noisy_all = [], [], [], []
                for _ in range(3):
                    plain.append(timed(lambda: GaussianMixture(K, covariance_type=model, init_params=plain_start,
                                                               tol=0.0, max_iter=iterations).fit(X)) / iterations)
                    noisy.append(timed(lambda: GaussianMixture(K, covariance_type=model, init_params=start,
                                                               noise=True, tol=0.0, max_iter=iterations).fit(X))
                                 / iterations)
                    plain_all.append(timed(lambda: GaussianMixture(K, covariance_type=model, random_state=0).fit(X)))
                    noisy_all.append(timed(lambda: GaussianMixture(K, covariance_type=model, noise=True,
                                                                   random_state=0).fit(X)))
                a, b = statistics.median(plain), statistics.median(noisy)
                c, e = statistics.median(plain_all), statistics.median(noisy_all)
                print(f"| {name} | {model} | {1e3 * a:.3f} | {1e3 * b:.3f} | {b / a:.2f}x | {1e3 * c:.1f} ms | "
                      f"{1e3 * e:.1f} ms | {e / c:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
