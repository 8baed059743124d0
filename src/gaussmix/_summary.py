"""A fitted mixture's criteria (log-likelihood, BIC, AIC, ICL), clustering table and summary as mclust's
``summary()`` prints it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gaussmix.em.kernels import CLASSIFIED, DENSITY_AND_CERTAINTY

if TYPE_CHECKING:  # pragma: no cover
    from gaussmix.engines import FitData

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
    prior : str or None
        The prior of a maximum a posteriori fit, in words (None: maximum likelihood).
    noise : float or None
        The weight of a noise component (None: none).
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
    prior: str | None = None
    noise: float | None = None
    ranking: tuple[tuple[str, int, float], ...] = ()
    criterion: str = "bic"

    def __str__(self) -> str:
        title = "Gaussian finite mixture model fitted by EM algorithm"
        rule = "-" * len(title)
        extra = ", equal proportions" if self.equal_proportions else ""
        if self.noise is not None:
            extra += f", and a noise component of weight {self.noise:.3f}"
        s = "s" if self.n_components != 1 else ""
        header = ("log-likelihood", "n", "df", "BIC", "ICL")
        values = (f"{self.log_likelihood:.3f}", _number(self.n_samples), str(self.n_parameters),
                  f"{self.bic:.4f}", f"{self.icl:.4f}")
        widths = [max(len(h), len(v)) for h, v in zip(header, values)]
        sizes = [_number(v) for v in self.cluster_sizes]
        labels = [str(k) for k in range(len(sizes))]
        if len(sizes) > self.n_components:  # a noise component's rows come last
            labels[-1] = "noise"
        columns = [max(len(a), len(b)) for a, b in zip(labels, sizes)]
        lines = [
            rule, title, rule, "",
            f"{self.model} ({self.description}) model with {self.n_components} component{s}{extra}:",
            *([] if self.prior is None else [f"Prior: {self.prior}"]), "",
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


def fitted_criteria(model, data: FitData) -> dict[str, float]:
    """:func:`information_criteria` of ``model`` on prepared data (one pass over them)."""
    sums = data.source.weighted_sum(model._structure(), model._params_from_attributes(), DENSITY_AND_CERTAINTY)
    loglik, weighted_certainty = (float(v) for v in data.given_scale(sums))
    n = float(data.given_scale(data.source.total_weight))
    p = model._n_parameters()
    bic = -2.0 * loglik + p * math.log(n)
    return {
        "log_likelihood": loglik,
        "n_parameters": p,
        "bic": bic,
        "aic": -2.0 * loglik + 2.0 * p,
        "icl": bic - 2.0 * weighted_certainty,
    }


def cluster_sizes(model, data: FitData) -> np.ndarray:
    """The weight of the rows each component of ``model`` classifies (one pass over the data)."""
    sums = data.source.weighted_sum(model._structure(), model._params_from_attributes(), CLASSIFIED)
    return np.asarray(data.given_scale(sums), dtype=np.float64)


def mixture_summary(model, log_likelihood, n_parameters, bic, icl, sizes, ranking=(), criterion="bic"):
    """A :class:`MixtureSummary` of a fitted ``model`` from its criteria and clustering table."""
    from gaussmix.covariance.decomposition import described

    return MixtureSummary(
        model=model.model_name_, description=described(model.covariance_type, model.n_features_in_),
        n_components=int(model.n_components),
        log_likelihood=float(log_likelihood), n_samples=float(np.sum(sizes)), n_parameters=int(n_parameters),
        bic=float(bic), icl=float(icl), cluster_sizes=np.asarray(sizes), ranking=tuple(ranking),
        equal_proportions=bool(getattr(model, "equal_proportions", False)), criterion=criterion,
        prior=prior_in_words(getattr(model, "prior", None)),
        noise=model.noise_proportion_ if getattr(model, "noise_volume_", None) is not None else None)


def prior_in_words(prior) -> str | None:
    """A ``prior`` hyper-parameter in words (None for none)."""
    if prior is None:
        return None
    if isinstance(prior, str) or not prior:
        return "conjugate, mclust's defaults (defaultPrior)"
    return f"conjugate, {', '.join(sorted(map(str, prior)))} given, mclust's defaults for the rest"

