"""gaussmix's mixtures with a noise component against mclust 6.0.0's, from the same start.

    python benchmarks/noise/compare_noise.py

Reads what ``mclust_noise.R`` wrote beside this script: the data, mclust's first guess of the noise and its
hierarchical start on the other rows (``start.csv``), and its fits (``mclust_noise.csv``). Fits
``GaussianMixture(noise=True)`` from each start (labels, -1 for the noise guess) and prints both fits'
log-likelihood, BIC, noise proportion, and the precision and recall of the rows each calls noise.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def read_rows(name: str) -> list[dict[str, str]]:
    with open(HERE / name, newline="") as handle:
        return list(csv.DictReader(handle))


def data_set(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The rows (x, y) and which of them are planted noise."""
    rows = read_rows(f"{name}.csv")
    columns = [key for key in rows[0] if key != "class"]
    X = np.array([[float(row[c]) for c in columns] for row in rows])
    return X, np.array([row["class"] == "noise" for row in rows])


def start(name: str, n_components: int) -> np.ndarray:
    """mclust's start: -1 for the first guess of the noise, else the hierarchical start's label (0-based)."""
    return np.array([int(row[f"G{n_components}"]) - 1 for row in read_rows("start.csv") if row["data"] == name])


def fit(X: np.ndarray, model: str, labels: np.ndarray, **settings):
    from gaussmix import GaussianMixture

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GaussianMixture(int(labels.max()) + 1, covariance_type=model, noise=True, init_params=labels,
                               reg_covar=0.0, tol=1e-10, max_iter=10000, **settings).fit(X)


def precision_recall(called: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    hits = np.sum(called & truth)
    return float(hits / max(np.sum(called), 1)), float(hits / np.sum(truth))


def main() -> int:
    print("| data | model | G | log-likelihood (mclust, gaussmix) | BIC, mclust's sign (mclust, gaussmix) | "
          "noise proportion | precision (mclust, gaussmix) | recall (mclust, gaussmix) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in read_rows("mclust_noise.csv"):
        name, model, G = row["data"], row["model"], int(row["G"])
        X, truth = data_set(name)
        ours = fit(X, model, start(name, G))
        loglik = float(ours.score(X)) * len(X)
        precision, recall = precision_recall(ours.predict(X) == -1, truth)
        print(f"| {name} | {model} | {G} | {float(row['loglik']):.3f}, {loglik:.3f} | {float(row['bic']):.3f}, "
              f"{-ours.bic(X):.3f} | {float(row['noise']):.4f}, {ours.noise_proportion_:.4f} | "
              f"{float(row['precision']):.3f}, {precision:.3f} | {float(row['recall']):.3f}, {recall:.3f} |",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
