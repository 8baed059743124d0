"""What variational inference costs: BayesianGaussianMixture against GaussianMixture and scikit-learn's
BayesianGaussianMixture, side by side in one run.

    python benchmarks/bench_bayesian.py [--quick]

All three start from the same responsibilities (a k-means partition) and make the same number of iterations
(``tol=0``); the figure is the median time per iteration over three alternating rounds, one BLAS thread.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits


def timed(function) -> float:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        function()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data")
    args = parser.parse_args()
    from sklearn.cluster import KMeans
    from sklearn.mixture import BayesianGaussianMixture as ScikitBayesian

    from gaussmix import BayesianGaussianMixture, GaussianMixture
    from gaussmix.datasets import load_faithful

    rng = np.random.default_rng(0)
    sizes = (2_000, 100_000) if not args.quick else (2_000, 10_000)
    cases = {"Old Faithful": load_faithful().data}
    for n in sizes:
        cases[f"synthetic n={n:,} d=8"] = np.vstack([rng.normal(c, 1.0, (n // 4, 8)) for c in (0, 3, 6, 9)])
    print("| data | structure | GaussianMixture, ms per iteration | BayesianGaussianMixture | ratio | "
          "scikit-learn's BayesianGaussianMixture | gaussmix faster by |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with threadpool_limits(1):
        for name, X in cases.items():
            K = 6
            start = np.eye(K)[KMeans(K, n_init=1, random_state=0).fit(X).labels_]
            iterations = 100 if len(X) < 10_000 else 10
            for structure in ("full", "diag"):
                plain, ours, theirs = [], [], []

                def scikit():
                    model = ScikitBayesian(n_components=K, covariance_type=structure)
                    model._check_parameters(X)
                    model._initialize(X, start)
                    for _ in range(iterations):
                        log_prob_norm, log_resp = model._e_step(X)
                        model._m_step(X, log_resp)
                        model._compute_lower_bound(log_resp, log_prob_norm)

                for _ in range(3):
                    plain.append(timed(lambda: GaussianMixture(K, covariance_type=structure, init_params=start,
                                                               tol=0.0, max_iter=iterations).fit(X)) / iterations)
                    ours.append(timed(lambda: BayesianGaussianMixture(K, covariance_type=structure,
                                                                      init_params=start, tol=0.0,
                                                                      max_iter=iterations).fit(X)) / iterations)
                    theirs.append(timed(scikit) / iterations)
                a, b, c = (statistics.median(v) for v in (plain, ours, theirs))
                print(f"| {name} | {structure} | {1e3 * a:.3f} | {1e3 * b:.3f} | {b / a:.2f}x | {1e3 * c:.3f} | "
                      f"{c / b:.1f}x |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
