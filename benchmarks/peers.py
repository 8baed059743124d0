"""Other Gaussian-mixture libraries timed on the benchmark's cells, from the same starting parameters.

* gmmx (JAX; float32, full and diagonal covariances): its own E-step and
  M-step (``EMFitter.e_step`` / ``m_step``), compiled together by
  ``jax.jit``, on the CPU.
* pomegranate (PyTorch; full, diagonal and spherical covariances): its
  ``GeneralMixtureModel`` EM step, ``summarize`` then ``from_summaries``.

Both are optional benchmark dependencies (``pip install 'gaussmix[bench]'``):
a library that is not installed, does not offer the structure, or whose
temporaries would not fit in memory (both hold ``n x K x d`` arrays) gets no
time, and says why. Each returns the median seconds per iteration and the
mean log-likelihood per row after the timed iterations.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

#: Peers are skipped where their (n, K, d) temporaries would take more than this many bytes.
MAX_TEMPORARY_BYTES = 4 << 30


def _too_large(X, K) -> bool:
    n, d = X.shape
    return n * K * d * X.dtype.itemsize > MAX_TEMPORARY_BYTES


def gmmx_iterations(X, K, structure, init, iterations):
    """(seconds per iteration, log-likelihood per row) or a reason it was not run."""
    if structure not in ("full", "diag"):
        return "gmmx has no such covariance"
    if X.dtype != np.float32:
        return "gmmx computes in float32 only"
    if _too_large(X, K):
        return "out of memory"
    try:
        import jax
    except ImportError:
        return "not installed"
    jax.config.update("jax_platforms", "cpu")
    try:
        from gmmx import EMFitter, GaussianMixtureModelJax
    except ImportError:
        return "not installed"
    import jax.numpy as jnp

    weights, means, precisions = init
    covariances = np.linalg.inv(precisions) if structure == "full" else 1.0 / precisions
    dtype = X.dtype
    gmm = GaussianMixtureModelJax.from_squeezed(
        means=jnp.asarray(means, dtype=dtype), covariances=jnp.asarray(covariances, dtype=dtype),
        weights=jnp.asarray(weights, dtype=dtype), covariance_type=structure)
    fitter = EMFitter(max_iter=1, tol=-1.0, reg_covar=1e-6)
    x = jnp.asarray(X)

    @jax.jit
    def step(gmm):
        log_likelihood, log_resp = fitter.e_step(x, gmm)
        return fitter.m_step(x, gmm, log_resp), log_likelihood

    jax.block_until_ready(step(gmm))  # compile
    times, bound = [], None
    for _ in range(iterations):
        begin = time.perf_counter()
        gmm, bound = jax.block_until_ready(step(gmm))
        times.append(time.perf_counter() - begin)
    return statistics.median(times), float(bound)


def pomegranate_iterations(X, K, structure, init, iterations):
    """(seconds per iteration, log-likelihood per row) or a reason it was not run."""
    kind = {"full": "full", "diag": "diag", "spherical": "sphere"}.get(structure)
    if kind is None:
        return "pomegranate has no such covariance"
    if _too_large(X, K):
        return "out of memory"
    try:
        import torch
        from pomegranate.distributions import Normal
        from pomegranate.gmm import GeneralMixtureModel
    except ImportError:
        return "not installed"
    weights, means, precisions = init
    covariances = np.linalg.inv(precisions) if structure == "full" else 1.0 / precisions
    if structure == "spherical":  # pomegranate stores a spherical covariance as d equal variances
        covariances = np.repeat(covariances[:, None], X.shape[1], axis=1)
    dtype = torch.float64 if X.dtype == np.float64 else torch.float32
    components = [Normal(means=torch.as_tensor(means[k], dtype=dtype),
                         covs=torch.as_tensor(covariances[k], dtype=dtype), covariance_type=kind,
                         min_cov=1e-6)
                  for k in range(K)]
    model = GeneralMixtureModel(components, priors=torch.as_tensor(weights, dtype=dtype), max_iter=1)
    rows = torch.as_tensor(X)
    with torch.no_grad():
        model.summarize(rows)  # warm-up
        model._reset_cache()
        times, bound = [], None
        for _ in range(iterations):
            begin = time.perf_counter()
            bound = model.summarize(rows)
            model.from_summaries()
            times.append(time.perf_counter() - begin)
    return statistics.median(times), float(bound) / X.shape[0]
