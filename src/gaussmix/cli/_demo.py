"""``gaussmix demo``: the tutorial on built-in synthetic data, with its figures."""

from __future__ import annotations

import argparse
import os

import numpy as np

DEMO_WEIGHTS = [0.45, 0.35, 0.2]
DEMO_MEANS = [[0.0, 0.0], [3.5, 2.5], [-0.5, 4.0]]
DEMO_COVARIANCES = [
    [[1.2, 0.6], [0.6, 1.0]],
    [[1.0, -0.5], [-0.5, 0.9]],
    [[0.5, 0.0], [0.0, 1.6]],
]
#: A start from three data rows that visibly needs EM to find the clusters.
PROGRESS_INIT = dict(init_params="random_from_data", random_state=3, tol=1e-6)


def demo_data(n_samples: int = 500, seed: int = 0):
    from gaussmix.datasets import make_mixture

    return make_mixture(n_samples, DEMO_WEIGHTS, DEMO_MEANS, DEMO_COVARIANCES, random_state=seed)


def run_demo(args: argparse.Namespace) -> int:
    from gaussmix import GaussianMixture, plot
    from gaussmix.cli._io import write_table
    from gaussmix.covariance import SCIKIT_LEARN_STRUCTURES
    from gaussmix.selection import criterion_table

    out = args.out
    os.makedirs(out, exist_ok=True)
    X, truth = demo_data(seed=args.seed)
    lines = [
        "gaussmix demo",
        "=============",
        "",
        f"Data: {len(X)} points in 2-D drawn from 3 Gaussian clusters (weights {DEMO_WEIGHTS}).",
    ]
    write_table(os.path.join(out, "data.csv"), {"x": X[:, 0], "y": X[:, 1], "cluster": truth})

    model = GaussianMixture(3, covariance_type="full", init_params="kmeans", random_state=args.seed).fit(X)
    resp = model.predict_proba(X)
    lines += [
        "",
        f"Fit: 3 components, full covariances, k-means initialisation; {model.n_iter_} EM iterations, "
        f"converged: {model.converged_}.",
        f"Mean log-likelihood per point: {model.score(X):.4f}",
        "  component  weight   mean            covariance",
    ]
    for k in range(3):
        cov = model.covariances_[k]
        lines.append(
            f"  {k:>9}  {model.weights_[k]:6.3f}   ({model.means_[k, 0]:5.2f}, {model.means_[k, 1]:5.2f})   "
            f"[[{cov[0, 0]:.2f}, {cov[0, 1]:.2f}], [{cov[1, 0]:.2f}, {cov[1, 1]:.2f}]]"
        )

    uncertain = np.argsort(resp.max(axis=1))[:5]
    lines += ["", "Responsibilities of the 5 least certain points (one column per component):"]
    for i in uncertain:
        lines.append(f"  point {i:3d} at ({X[i, 0]:5.2f}, {X[i, 1]:5.2f}):  " + "  ".join(f"{p:.3f}" for p in resp[i]))
    write_table(
        os.path.join(out, "responsibilities.csv"),
        {"label": resp.argmax(axis=1), **{f"prob_{k}": resp[:, k] for k in range(3)}},
    )

    # Saved with the data file's column names, so `gaussmix predict` picks those columns.
    model.feature_names_in_ = np.asarray(["x", "y"], dtype=object)
    model.save(os.path.join(out, "model.npz"))

    table = criterion_table(X, range(1, 7), SCIKIT_LEARN_STRUCTURES, random_state=args.seed, n_init=2)
    best = min((r for r in table if r["error"] is None), key=lambda r: r["bic"])
    structures = SCIKIT_LEARN_STRUCTURES
    lines += ["", "BIC for 1-6 components (lower is better):", "  components  " + "  ".join(
        f"{t:>10}" for t in structures)]
    for k in range(1, 7):
        row = {r["covariance_type"]: r["bic"] for r in table if r["n_components"] == k}
        lines.append(f"  {k:>10}  " + "  ".join(f"{row[t]:10.2f}" for t in structures))
    lines.append(f"Lowest BIC: {best['n_components']} components, {best['covariance_type']} covariance.")

    figures = {
        "density_contours.png": lambda: plot.density_contours(model, X),
        "bic.png": lambda: plot.criterion_curve(table, ("bic", "aic")),
        "ellipses.png": lambda: plot.ellipses(model, X),
        "em_progress.png": lambda: plot.em_progress(GaussianMixture(3, **PROGRESS_INIT), X, iterations=(1, 2, 5, 20)),
    }
    for name, draw in figures.items():
        draw().savefig(os.path.join(out, name), dpi=110)
    lines += [
        "",
        "EM progress figure: from 3 randomly chosen data points (init_params='random_from_data').",
        "",
        "Files:",
        *[f"  {name}" for name in (*figures, "data.csv", "responsibilities.csv", "model.npz", "summary.txt")],
        "",
        "Try: gaussmix predict " + os.path.join(out, "model.npz") + " " + os.path.join(out, "data.csv"),
    ]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "summary.txt"), "w", encoding="utf-8") as handle:
        handle.write(text)
    print(text, end="")
    print(f"\nFigures and summary written to {os.path.abspath(out)}")
    return 0
