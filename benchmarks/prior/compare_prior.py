"""gaussmix's maximum a posteriori fits against mclust 6.0.0's, from the same start.

    python benchmarks/prior/compare_prior.py

Reads the numbers ``mclust_prior.R`` wrote beside this script (``mclust_prior.csv``, ``labels.csv``) and fits
``GaussianMixture(prior="default")`` from each of mclust's hierarchical starts with EM run to a change of 1e-12
per row. Prints, for every model and data set, the largest relative difference in log-likelihood and BIC.
"""

from __future__ import annotations

import csv
import sys
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def data_sets() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_iris

    from gaussmix.datasets import load_faithful

    faithful = load_faithful().data
    diabetes = np.loadtxt(HERE / "diabetes.csv", delimiter=",", skiprows=1)
    iris = load_iris().data
    return {"iris": iris, "faithful": faithful, "diabetes": diabetes, "waiting": faithful[:, 1:],
            "eruptions": faithful[:, :1], "sepal_length": iris[:, :1]}


def read_rows(name: str) -> list[dict[str, str]]:
    with open(HERE / name, newline="") as handle:
        return list(csv.DictReader(handle))


def start_labels() -> dict[tuple[str, int], np.ndarray]:
    labels: dict[tuple[str, int], list[int]] = defaultdict(list)
    for row in read_rows("labels.csv"):
        labels[row["data"], int(row["G"])].append(int(row["label"]) - 1)
    return {key: np.asarray(value) for key, value in labels.items()}


def fit_from(X: np.ndarray, model: str, labels: np.ndarray, n_components: int):
    from gaussmix import GaussianMixture

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GaussianMixture(n_components, covariance_type=model, prior="default", init_params=labels,
                               reg_covar=0.0, tol=1e-12, max_iter=100000).fit(X)


def main() -> int:
    sets, starts = data_sets(), start_labels()
    worst: dict[tuple[str, str], float] = defaultdict(float)
    for row in read_rows("mclust_prior.csv"):
        name, model, G = row["data"], row["model"], int(row["G"])
        X = sets[name]
        labels = np.zeros(len(X), dtype=int) if G == 1 else starts[name, G]
        fit = fit_from(X, model, labels, G)
        loglik = float(fit.score(X)) * len(X)
        bic = -float(fit.bic(X))  # mclust's sign
        relative = max(abs(loglik - float(row["loglik"])) / abs(float(row["loglik"])),
                       abs(bic - float(row["bic"])) / abs(float(row["bic"])))
        worst[model, name] = max(worst[model, name], relative)
        print(f"{name:>12} {model} G={G}  mclust {float(row['loglik']):.6f}  gaussmix {loglik:.6f}  "
              f"relative {relative:.1e}", file=sys.stderr)
    models = sorted({m for m, _ in worst}, key=lambda m: ("E", "V", "EII", "VII", "EEI", "VEI", "EVI", "VVI",
                                                          "EEE", "EEV", "VEV", "VVV").index(m))
    names = list(dict.fromkeys(n for _, n in worst))
    print("| model | " + " | ".join(names) + " |")
    print("| --- |" + " --- |" * len(names))
    for model in models:
        cells = [f"{worst[model, n]:.1e}" if (model, n) in worst else "" for n in names]
        print(f"| {model} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
