"""A fitted mixture summarised as mclust's ``summary()`` prints it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIGN_NOTE = ("BIC = -2 log-likelihood + df log n and ICL = BIC - 2 sum_i log max_k z_ik: lower is better "
             "(mclust reports their negatives).")


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.6g}"


@dataclass(frozen=True)
class MixtureSummary:
    """What a fitted mixture is and how well it fits: ``print(selector.summary())``.

    Attributes
    ----------
    model : str
        mclust's name of the covariance model ("VEV"; "E"/"V" on one feature).
    description : str
        The model in words.
    n_components : int
    log_likelihood : float
    n_samples : float
        The number of rows (their total weight with ``sample_weight``).
    n_parameters : int
        Free parameters (mclust's ``df``).
    bic, icl : float
        In gaussmix's sign, lower is better (mclust's are the negatives).
    cluster_sizes : ndarray of shape (n_components,)
        The rows (their weight) each component classifies: the clustering table.
    equal_proportions : bool
    ranking : tuple of (str, int, float)
        For a selector: the best three candidates by its criterion, as
        (model, n_components, value); empty for a single model.
    criterion : str
        What ``ranking`` is by ("bic", "aic", "icl" or "cv").
    """

    model: str
    description: str
    n_components: int
    log_likelihood: float
    n_samples: float
    n_parameters: int
    bic: float
    icl: float
    cluster_sizes: np.ndarray
    equal_proportions: bool = False
    ranking: tuple[tuple[str, int, float], ...] = ()
    criterion: str = "bic"

    def __str__(self) -> str:
        title = "Gaussian finite mixture model fitted by EM algorithm"
        rule = "-" * len(title)
        parts = "equal proportions, " if self.equal_proportions else ""
        s = "s" if self.n_components != 1 else ""
        header = ("log-likelihood", "n", "df", "BIC", "ICL")
        values = (f"{self.log_likelihood:.3f}", _number(self.n_samples), str(self.n_parameters),
                  f"{self.bic:.4f}", f"{self.icl:.4f}")
        widths = [max(len(h), len(v)) for h, v in zip(header, values)]
        sizes = [_number(v) for v in self.cluster_sizes]
        labels = [str(k) for k in range(len(sizes))]
        columns = [max(len(a), len(b)) for a, b in zip(labels, sizes)]
        lines = [
            rule, title, rule, "",
            f"{self.model} ({self.description}) model with {self.n_components} component{s}{', ' if parts else ''}"
            f"{parts.rstrip(', ')}:", "",
            " ".join(h.rjust(w) for h, w in zip(header, widths)),
            " ".join(v.rjust(w) for v, w in zip(values, widths)),
            "", "Clustering table:",
            " ".join(a.rjust(w) for a, w in zip(labels, columns)),
            " ".join(b.rjust(w) for b, w in zip(sizes, columns)),
        ]
        if self.ranking:
            name = "mean held-out log-likelihood" if self.criterion == "cv" else self.criterion.upper()
            lines += ["", f"Best {name} values:"]
            lines += [f"  {model},{k}: {value:.4f}" for model, k, value in self.ranking]
        lines += ["", SIGN_NOTE]
        return "\n".join(lines)

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython shows the text
        printer.text(str(self))
