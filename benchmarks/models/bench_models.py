"""Time per EM iteration of each of mclust's fourteen models, relative to VVV (``full``) on the same data.

    python benchmarks/models/bench_models.py [--rows 2000 100000] [--features 2 8 32] [--components 4]

For every (rows, features) cell: data drawn from a mixture of ``components``
Gaussians; each model fitted from the same k-means start for 25 iterations
(``tol=0``), the time of each iteration read from the fit's callback, and
the median over iterations 5 to 25 kept (the first iterations of an
iterative M-step start cold). Models run alternately, three rounds, the
best of the three kept; BLAS on one thread. Prints one row per model:
milliseconds per iteration and the ratio to VVV in each cell.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench_starts import single_threaded  # noqa: E402

from gaussmix import GaussianMixture  # noqa: E402
from gaussmix.covariance import MCLUST_MODELS  # noqa: E402

ITERATIONS, SKIPPED, ROUNDS = 25, 5, 3


def sample(n: int, d: int, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=4.0, size=(k, d))
    rows = []
    for j, size in enumerate(np.full(k, n // k)):
        factor = rng.normal(size=(d, d)) / np.sqrt(d) + np.eye(d) * rng.uniform(0.5, 1.5)
        rows.append(means[j] + rng.normal(size=(size, d)) @ factor)
    return np.concatenate(rows)


def per_iteration(X: np.ndarray, model: str, k: int) -> float:
    """Median seconds per EM iteration after the first SKIPPED."""
    stamps: list[float] = []
    GaussianMixture(k, covariance_type=model, init_params="kmeans", tol=0.0, max_iter=ITERATIONS, random_state=0,
                    callback=lambda info: stamps.append(time.perf_counter())).fit(X)
    return float(np.median(np.diff(stamps)[SKIPPED:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[2000, 100000])
    parser.add_argument("--features", type=int, nargs="+", default=[2, 8, 32])
    parser.add_argument("--components", type=int, default=4)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    cells = [(n, d) for n in args.rows for d in args.features]
    times = {cell: {} for cell in cells}
    with single_threaded():
        for n, d in cells:
            X = sample(n, d, args.components)
            for model in MCLUST_MODELS:  # compile, warm caches
                per_iteration(X[:500], model, args.components)
            best = dict.fromkeys(MCLUST_MODELS, np.inf)
            for _ in range(ROUNDS):
                for model in MCLUST_MODELS:
                    best[model] = min(best[model], per_iteration(X, model, args.components))
            times[n, d] = best
            print(f"n={n} d={d}: VVV {1e3 * best['VVV']:.3f} ms per iteration", file=sys.stderr, flush=True)
    header = "| model | " + " | ".join(f"n={n:,}, d={d}" for n, d in cells) + " |"
    print(header)
    print("|" + " --- |" * (len(cells) + 1))
    for model in MCLUST_MODELS:
        parts = [f"{1e3 * times[c][model]:.2f} ms ({times[c][model] / times[c]['VVV']:.2f}x)" for c in cells]
        print(f"| {model} | " + " | ".join(parts) + " |")


if __name__ == "__main__":
    main()
