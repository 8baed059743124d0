"""A mixture estimator's noise component (``noise=``): its first guess, region and start, from the data.

The noise's model is :mod:`gaussmix.em.noise` and the noise column of the E-step; this is what an estimator
decides from its hyper-parameters and training data before EM.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from gaussmix.em.fit import FitSettings
from gaussmix.engines import FitData
from gaussmix.exceptions import InvalidParameterError


def noise_start(model, data: FitData, settings: FitSettings) -> tuple | None:
    """With ``model.noise``: the settings with the noise's volume, the signal rows to start from with the
    noise's starting weight, the region's bounding box, and ``init_params`` without noise labels; else None.

    The first guess of the noise rows is ``noise`` itself (a boolean mask), the rows labelled -1 by
    ``init_params`` (labels), or :func:`~gaussmix.em.noise.noise_guess`.
    """
    from gaussmix.em.noise import hypervolume, noise_guess

    requested = getattr(model, "noise", False)
    if isinstance(requested, (bool, np.bool_)):
        requested = bool(requested)
    if requested is False or requested is None:
        return None
    if not data.engine.indexable:
        raise InvalidParameterError(f"noise is not available for {data.engine.title} data: it needs the rows in "
                                    "memory (numpy or torch)")
    X = np.asarray(data.source.xp.to_numpy(data.rows), dtype=np.float64)
    given_weights = np.ldexp(data.source.weights_numpy(), -data.weight_exponent)
    positive = given_weights > 0
    labels = model.init_params
    if requested is True:
        partition = np.asarray(labels) if settings.init == "given" else None
        if partition is not None and partition.ndim == 1 and np.any(partition == -1):
            mask = partition == -1
            labels = np.where(mask, 0, partition)
        else:
            memo = getattr(data.source, "memo", None)
            minimum = settings.n_components * (X.shape[1] + 1)
            mask = None if memo is None else memo.get(("noise guess", minimum))
            if mask is None:  # made once for these data (a selector's candidates share it)
                mask = np.zeros(len(X), dtype=bool)
                mask[positive] = noise_guess(X[positive], minimum_signal=minimum)
                if memo is not None:
                    memo[("noise guess", minimum)] = mask
    else:
        mask = np.asarray(requested)
        if mask.dtype != bool or mask.shape != (len(X),):
            raise InvalidParameterError(
                f"noise must be True, False or a boolean mask of the {len(X)} rows (True: a first guess of the "
                f"noise rows); got {type(requested).__name__}"
                + (f" of shape {mask.shape} and dtype {mask.dtype}" if isinstance(requested, np.ndarray) else "")
                + "."
            )
    volume = model.noise_volume
    if volume is None or isinstance(volume, str):
        try:
            volume = hypervolume(X[positive], "hypvol" if volume is None else volume)
        except ValueError as exc:
            raise InvalidParameterError(str(exc)) from None
    signal_weights = np.where(mask, 0.0, given_weights)
    if np.count_nonzero(signal_weights) < settings.n_components:
        raise InvalidParameterError(
            f"the first guess calls {int(np.count_nonzero(mask & positive))} of {int(np.count_nonzero(positive))} "
            f"rows noise, leaving fewer than n_components={settings.n_components} to start the Gaussians from; "
            "give a mask with fewer noise rows"
        )
    signal = data.engine.prepare(data.rows, signal_weights, device=data.device)
    fraction = float(np.sum(given_weights[mask]) / np.sum(given_weights))
    bounds = np.stack([X[positive].min(axis=0), X[positive].max(axis=0)])
    return replace(settings, noise_volume=float(volume)), (signal.source, fraction), bounds, labels
