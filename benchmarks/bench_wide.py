"""Wide data: end-to-end fits of gaussmix and scikit-learn side by side in one run.

    python benchmarks/bench_wide.py

For each shape (rows x features, structure, components) both libraries fit
the same two-cluster data with their defaults; the table gives the median
seconds of 3 fits and gaussmix's time relative to scikit-learn's.
"""

from __future__ import annotations

import statistics
import time
import warnings

import numpy as np

CASES = [
    (20, 10_000, "diag", 2),
    (20, 10_000, "spherical", 2),
    (20, 1_000, "full", 2),
    (20, 1_000, "full", 5),
    (20, 1_000, "tied", 5),
    (2_000, 1_000, "full", 5),
    (2_000, 200, "full", 5),
]


def data(n: int, d: int) -> np.ndarray:
    rng = np.random.RandomState(0)
    return np.vstack([rng.normal(0, 1, (n // 2, d)), rng.normal(3, 1, (n - n // 2, d))])


def median_seconds(fit, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        fit()
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


def main() -> None:
    from sklearn.mixture import GaussianMixture as Theirs

    from gaussmix import GaussianMixture as Ours

    warnings.simplefilter("ignore")  # few rows in many dimensions: collapsed components are expected
    print(f"{'rows x features':>16} {'structure':>10} {'K':>3} {'gaussmix s':>11} {'sklearn s':>10} {'ratio':>6}")
    for n, d, structure, k in CASES:
        X = data(n, d)
        ours = median_seconds(lambda: Ours(k, covariance_type=structure, random_state=0).fit(X))
        theirs = median_seconds(lambda: Theirs(k, covariance_type=structure, random_state=0).fit(X))
        print(f"{f'{n} x {d}':>16} {structure:>10} {k:>3} {ours:11.3f} {theirs:10.3f} {ours / theirs:6.2f}")


if __name__ == "__main__":
    main()
