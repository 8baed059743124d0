"""gaussmix against scikit-learn, side by side, from the same starting parameters.

    python3 run.py bench            # the full grid (about 90 minutes on 2 cores, with the peers)
    python3 run.py bench --quick    # a subset (about a minute)
    python3 run.py bench --dtype float64 --K 4 --n 10000   # the cells of the grid with these values

For each cell (rows n, features d, components K, covariance structure, dtype)
both libraries start from the same parameters and run the same EM
iterations. Reported per cell:

* milliseconds per EM iteration (one E-step and one M-step) for gaussmix and
  for scikit-learn at the better of 1 and 2 BLAS threads;
* the speed-up (scikit-learn time / gaussmix time);
* gaussmix's useful GFLOP/s and its fraction of the float64 matrix-product
  ceiling measured at the start (useful flops per iteration: 2 n K d^2 for
  full and tied, 4 n K d for diag, 2 n K d for spherical);
* both final log-likelihoods and their relative difference (float64 cells
  must agree to 1e-8).

Then end-to-end fits (default k-means initialisation and tolerance) and the
peak memory of a large fit. Results go to ``benchmarks/results/latest.json``
and ``latest.md`` (``quick.*`` for ``--quick``, ``subset.*`` for cells chosen with ``--n``, ``--d``,
``--K`` or ``--structure``); a full run with the default folder also refreshes the table in
``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

HERE = Path(__file__).resolve().parent
STRUCTURES = ("full", "tied", "diag", "spherical")
MAX_COMPLEXITY = 1e11  # n K d^2 above which full and tied cells are skipped


def matmul_ceiling() -> dict:
    """Best float64 GFLOP/s of a large square matrix product with 1 and 2 threads."""
    a = np.random.RandomState(0).rand(2048, 2048)
    result = {}
    for threads in (1, 2):
        with threadpool_limits(threads):
            a @ a
            best = min(_timed(lambda: a @ a) for _ in range(3))
        result[threads] = 2 * 2048**3 / best / 1e9
    return {"gflops_1_thread": result[1], "gflops_2_threads": result[2], "ceiling": max(result.values())}


def machine_floor() -> dict:
    """What one EM iteration cannot go below on this machine: matrix products at the float32 and float64
    ceilings, exponentials at the fastest rate available (the compiled polynomial when numba is there, else
    NumPy's), and one read of the data from memory, each on all cores."""
    b = np.random.RandomState(0).rand(2048, 2048).astype(np.float32)
    with threadpool_limits(2):
        b @ b
        float32_ceiling = 2 * 2048**3 / min(_timed(lambda: b @ b) for _ in range(3)) / 1e9
    values = -30.0 * np.random.RandomState(1).rand(1 << 16)
    exponentials = [lambda a: np.exp(a, out=a)]
    try:
        from gaussmix._compiled import compiled
        from gaussmix.em import _estep_loop

        loop = compiled(_estep_loop._exp_in_place)
        if loop is not None:
            exponentials.append(loop)
    except ImportError:  # pragma: no cover - an older gaussmix
        pass
    best = math.inf
    for exponential in exponentials:
        work = values.copy()
        exponential(work)
        for _ in range(3):
            begin = time.perf_counter()
            for _ in range(20):
                work[:] = values
                exponential(work)
            best = min(best, (time.perf_counter() - begin) / 20 / values.size)
    big = np.ones(1 << 25)  # 256 MB
    halves = (big[: big.size // 2], big[big.size // 2:])
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(np.sum, halves))
        read = min(_timed(lambda: list(pool.map(np.sum, halves))) for _ in range(3))
    threads = 2
    return {"float32_gflops": float32_ceiling, "exp_ns_per_thread": best * 1e9, "threads": threads,
            "read_gb_per_s": big.nbytes / read / 1e9}


def best_machine(first: tuple[dict, dict], second: tuple[dict, dict]) -> tuple[dict, dict]:
    """The faster of two measurements of the ceiling and the floor (a shared machine can be slowed for minutes
    by its neighbours, and a floor must be what the machine can do, not what it did at one moment)."""
    (c1, f1), (c2, f2) = first, second
    ceiling = {key: max(c1[key], c2[key]) for key in c1}
    floor = {"float32_gflops": max(f1["float32_gflops"], f2["float32_gflops"]),
             "exp_ns_per_thread": min(f1["exp_ns_per_thread"], f2["exp_ns_per_thread"]),
             "threads": f1["threads"], "read_gb_per_s": max(f1["read_gb_per_s"], f2["read_gb_per_s"])}
    return ceiling, floor


def rescaled(cell: dict, ceiling: float, floor: dict) -> dict:
    """``cell`` with its fraction of the ceiling and its floor taken against ``ceiling`` and ``floor``."""
    dtype = np.float32 if cell["dtype"] == "float32" else np.float64
    floor_ms = 1e3 * floor_seconds(cell["n"], cell["d"], cell["K"], cell["structure"], dtype, ceiling, floor)
    return {**cell, "ceiling_fraction": cell["gflops"] / ceiling, "floor_ms": floor_ms,
            "of_floor": cell["gaussmix_ms"] / floor_ms, "sklearn_of_floor": cell["sklearn_ms"] / floor_ms}


def floor_parts(n, d, K, structure, dtype, ceiling, floor) -> dict:
    """The seconds of the parts of a cell's floor: its products, its exponentials, one read of its data."""
    gflops = floor["float32_gflops"] if np.dtype(dtype) == np.float32 else ceiling
    return {"products": useful_flops(n, d, K, structure) / (gflops * 1e9),
            "exponentials": n * K * floor["exp_ns_per_thread"] * 1e-9 / floor["threads"],
            "data": n * d * np.dtype(dtype).itemsize / (floor["read_gb_per_s"] * 1e9)}


def floor_seconds(n, d, K, structure, dtype, ceiling, floor) -> float:
    """The machine's floor for one iteration of a cell (see :func:`machine_floor`)."""
    return sum(floor_parts(n, d, K, structure, dtype, ceiling, floor).values())


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def make_data(n, d, K, dtype, seed=0):
    """A K-cluster mixture with unit-variance features (so both libraries regularise alike)."""
    rng = np.random.RandomState(seed)
    centres = rng.normal(0, 3.0, (K, d))
    labels = rng.randint(0, K, n)
    X = np.empty((n, d))
    for start in range(0, n, 1 << 18):
        stop = min(n, start + (1 << 18))
        X[start:stop] = centres[labels[start:stop]] + rng.normal(size=(stop - start, d))
    X -= X.mean(axis=0)
    X /= X.std(axis=0)
    return X.astype(dtype, copy=False)


def starting_point(X, K, structure, seed=1):
    from gaussmix.covariance import get_structure

    rng = np.random.RandomState(seed)
    d = X.shape[1]
    means = np.asarray(X[rng.choice(X.shape[0], K, replace=False)], dtype=np.float64)
    variance = 0.5
    precisions = {
        "full": np.broadcast_to(np.eye(d) / variance, (K, d, d)).copy(),
        "tied": np.eye(d) / variance,
        "diag": np.full((K, d), 1 / variance),
        "spherical": np.full(K, 1 / variance),
    }[structure]
    assert precisions.shape == get_structure(structure).covariance_shape(K, d)
    return np.full(K, 1.0 / K), means, precisions


def useful_flops(n, d, K, structure) -> float:
    return {"full": 2 * n * K * d * d, "tied": 2 * n * K * d * d, "diag": 4 * n * K * d, "spherical": 2 * n * K * d}[
        structure
    ]


def gaussmix_iterations(X, K, structure, init, iterations):
    """Per-iteration seconds and lower bounds of ``iterations`` EM steps (gaussmix)."""
    from gaussmix import GaussianMixture
    from gaussmix.covariance import get_structure
    from gaussmix.covariance._linalg import SingularCovarianceError
    from gaussmix.em.loop import estep
    from gaussmix.em.models import MaximumLikelihood
    from gaussmix.em.scale import DataScale
    from gaussmix.engines._chunked import ChunkedData

    s = get_structure(structure)
    weights, means, precisions = init
    layout = s.layout
    covariances = layout.covariances_from_precisions_cholesky(layout.precisions_cholesky_from_precisions(precisions))
    params = GaussianMixture.from_parameters(weights, means, covariances, covariance_type=structure)
    params = params._params_from_attributes()
    data = ChunkedData(X)
    model = MaximumLikelihood(s, DataScale.of(data, 1e-6))
    times, bounds = [], []
    global LAST_DROPPED, LAST_EXACT
    LAST_DROPPED, exact, in_float64 = [], False, False
    for _ in range(iterations):
        # float32 data: the model's own terms ask for float64 where rounding would swamp a covariance
        in_float64 |= X.dtype != np.float64 and model.kernel_terms(params, data.shift).in_float64
        begin = time.perf_counter()
        stats = estep(data, model, params, exact)
        try:
            params, dropped = model.update(stats, params)
        except SingularCovarianceError:  # as run_em does: float64 moments from here on (float32 data only)
            if exact or X.dtype == np.float64:
                raise
            exact = True
            stats = estep(data, model, params, exact)
            params, dropped = model.update(stats, params)
        times.append(time.perf_counter() - begin)
        bounds.append(stats.log_likelihood / stats.total_weight)
        LAST_DROPPED.append(bool(dropped))
    LAST_EXACT = exact or in_float64
    return times, bounds


#: Per iteration of the last gaussmix_iterations: whether a component lost all its rows and was dropped.
LAST_DROPPED: list[bool] = []
#: Whether some iteration of the last gaussmix_iterations on float32 data computed in float64 (see
#: gaussmix.em.scale.beyond_rounding, and run_em's retry of a singular float32 step).
LAST_EXACT = False


def repeats_for(first_iteration_seconds: float) -> int:
    """Iterations to time: many for cheap cells (their timings are noisy), one for heavy ones."""
    if first_iteration_seconds > 3.0:
        return 1
    if first_iteration_seconds > 1.0:
        return 2
    return int(min(20, max(3, 1.0 / max(first_iteration_seconds, 1e-6))))


def sklearn_iterations(X, K, structure, init, threads, iterations=None):
    """scikit-learn's own E-step and M-step from ``init``: seconds and lower bounds per iteration.

    Without ``iterations``, the first iteration's time decides how many follow.
    """
    from sklearn.mixture import GaussianMixture as SkGaussianMixture
    from sklearn.utils._array_api import get_namespace

    weights, means, precisions = init
    model = SkGaussianMixture(K, covariance_type=structure, weights_init=weights, means_init=means,
                              precisions_init=precisions, max_iter=1)
    xp, _ = get_namespace(X)
    model._check_parameters(X, xp=xp)  # scikit-learn's own set-up, as in its fit
    model._initialize_parameters(X, np.random.RandomState(0), xp=xp)
    times, bounds = [], []
    with threadpool_limits(threads):
        while iterations is None or len(times) < iterations:
            begin = time.perf_counter()
            bound, log_resp = model._e_step(X)
            model._m_step(X, log_resp)
            times.append(time.perf_counter() - begin)
            bounds.append(float(bound))
            if iterations is None:
                iterations = repeats_for(times[0])
    return times, bounds


#: Seconds of idleness before each timed block of :func:`run_cell`: OpenBLAS's threads spin for about
#: 0.1 s after their last product (0.12 s of pause was enough to remove the slowdown it measures).
SETTLE_SECONDS = 0.25


def run_cell(n, d, K, structure, dtype, ceiling, floor=None, peers=True):
    """Time both libraries on one cell; compare log-likelihoods after the same iterations.

    Each library's iterations run as a block, gaussmix's after an untimed
    one, and every block after a pause of :data:`SETTLE_SECONDS`: the BLAS
    threads of scikit-learn's 2-threaded products (and the peers' thread
    pools) keep spinning for a while after they return, and a block started
    just then ran up to 1.8x slower (diag n=1e4, d=64, K=16: 9.3 against
    5.2 ms per iteration, median of 6 blocks each way), which would bias
    the comparison towards whichever library ran first.

    scikit-learn runs at 2 threads first; its first iteration sets the
    number of iterations (up to 20 for cheap cells, 1 for heavy ones). Its
    1-thread time is measured where an iteration takes under 2 s (heavier
    cells are compute-bound, where 2 threads is its better setting), and
    float32 cells time one scikit-learn iteration at 2 threads only: their
    target is gaussmix float32 against gaussmix float64.
    """
    X = make_data(n, d, K, dtype)
    init = starting_point(X, K, structure)
    single = np.dtype(dtype) == np.float32
    time.sleep(SETTLE_SECONDS)
    two, sk_bounds = sklearn_iterations(X, K, structure, init, 2, 1 if single else None)
    repeats = repeats_for(two[0]) if single else len(two)
    time.sleep(SETTLE_SECONDS)
    gaussmix_iterations(X, K, structure, init, 1)  # warm-up
    ours, our_bounds = gaussmix_iterations(X, K, structure, init, max(repeats, len(two)))
    one = None
    if not single and two[0] < 2.0:
        time.sleep(SETTLE_SECONDS)
        one = sklearn_iterations(X, K, structure, init, 1, len(two))[0]
    our_time = statistics.median(ours)
    sk_two = statistics.median(two)
    sk_one = statistics.median(one) if one else math.inf
    best_sk = min(sk_one, sk_two)
    flops = useful_flops(n, d, K, structure)
    compared = len(sk_bounds)  # both after this many iterations
    our_bound, sk_bound = our_bounds[compared - 1], sk_bounds[-1]
    dropped = any(LAST_DROPPED[: compared - 1])  # a drop changes the bounds of later iterations
    others = {}
    if peers:
        import peers as peer_libraries

        timed = 1 if two[0] > 5.0 else 3
        for name, run in (("gmmx", peer_libraries.gmmx_iterations),
                          ("pomegranate", peer_libraries.pomegranate_iterations)):
            time.sleep(SETTLE_SECONDS)
            try:
                result = run(X, K, structure, init, timed)
            except Exception as exc:  # a peer's failure is a result of the cell, not the benchmark's
                result = f"failed: {type(exc).__name__}"
            if isinstance(result, str):
                others[f"{name}_ms"], others[f"{name}_note"] = None, result
            else:
                others[f"{name}_ms"], others[f"{name}_note"] = result[0] * 1e3, None
    floor_ms = None if floor is None else 1e3 * floor_seconds(n, d, K, structure, dtype, ceiling, floor)
    return {
        "n": n, "d": d, "K": K, "structure": structure, "dtype": np.dtype(dtype).name,
        "gaussmix_ms": our_time * 1e3,
        "sklearn_ms": best_sk * 1e3,
        "sklearn_ms_1_thread": sk_one * 1e3 if one else None,
        "sklearn_ms_2_threads": sk_two * 1e3,
        "speedup": best_sk / our_time,
        "gflops": flops / our_time / 1e9,
        "ceiling_fraction": flops / our_time / 1e9 / ceiling,
        "iterations": len(ours),
        "compared_after": compared,
        "loglik_gaussmix": our_bound,
        "loglik_sklearn": sk_bound,
        "loglik_rel_diff": abs(our_bound - sk_bound) / max(abs(sk_bound), 1e-300),
        "component_dropped": dropped,
        "float64_moments": LAST_EXACT,
        "floor_ms": floor_ms,
        "of_floor": None if floor_ms is None else our_time * 1e3 / floor_ms,
        "sklearn_of_floor": None if floor_ms is None else best_sk * 1e3 / floor_ms,
        **others,
    }


def grid(quick: bool, dtypes_wanted=None, float32="all", only=None):
    """The cells ``(n, d, K, structure, dtype)`` of the grid (with ``only``, those it keeps: a dict of
    allowed values for any of "n", "d", "K" and "structure")."""
    only = only or {}
    if quick:
        sizes, dims, comps, structures, dtypes = (10_000, 100_000), (2, 32), (4, 16), ("full", "diag"), (np.float64,)
    else:
        sizes, dims, comps, structures, dtypes = (
            (10_000, 100_000, 1_000_000), (2, 8, 32, 64, 128), (4, 16, 64, 256), STRUCTURES, (np.float64, np.float32))
    for dtype in dtypes:
        if dtypes_wanted and np.dtype(dtype).name not in dtypes_wanted:
            continue
        for structure in structures:
            if np.dtype(dtype) == np.float32 and float32 == "compute-bound" and structure not in ("full", "tied"):
                continue
            for n in sizes:
                for d in dims:
                    for K in comps:
                        if structure in ("full", "tied") and n * K * d * d > MAX_COMPLEXITY:
                            continue
                        if K * 4 > n:
                            continue
                        wanted = {"n": n, "d": d, "K": K, "structure": structure}
                        if any(value not in only.get(key, (value,)) for key, value in wanted.items()):
                            continue
                        yield n, d, K, structure, dtype


def end_to_end(quick: bool):
    """Default initialisation and tolerance: total time, iterations, log-likelihood."""
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    from gaussmix import GaussianMixture

    cells = [(100_000, 2, 4), (100_000, 8, 16)] if quick else [
        (100_000, 2, 4), (100_000, 8, 16), (100_000, 32, 16), (1_000_000, 8, 16)]
    rows = []
    for n, d, K in cells:
        for structure in ("full", "diag"):
            X = make_data(n, d, K, np.float64, seed=3)
            result = {"n": n, "d": d, "K": K, "structure": structure}
            for name, cls in (("gaussmix", GaussianMixture), ("sklearn", SkGaussianMixture)):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model = cls(K, covariance_type=structure, random_state=0)
                    seconds = _timed(lambda model=model, X=X: model.fit(X))
                result[f"{name}_s"] = seconds
                result[f"{name}_iterations"] = int(model.n_iter_)
                result[f"{name}_loglik"] = float(model.score(X))
            result["speedup"] = result["sklearn_s"] / result["gaussmix_s"]
            rows.append(result)
            print(f"  end-to-end n={n} d={d} K={K} {structure}: gaussmix {result['gaussmix_s']:.2f} s, "
                  f"sklearn {result['sklearn_s']:.2f} s, x{result['speedup']:.1f}", flush=True)
    return rows


MEMORY_SCRIPT = """
import sys, numpy as np
sys.path.insert(0, {benchmarks!r})
from bench_em import make_data
from gaussmix import GaussianMixture

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

n, d, K = {n}, {d}, {K}
X = make_data(n, d, K, np.float64, seed=5)
GaussianMixture(K, covariance_type="full", max_iter=1).fit(X[:5000])  # load what a fit loads
with open("/proc/self/clear_refs", "w") as handle:  # reset the peak to the current size
    handle.write("5")
before = status("VmRSS:")
GaussianMixture(K, covariance_type="full", max_iter=5, random_state=0).fit(X)
print(X.nbytes, before, status("VmHWM:"))
"""


def peak_memory(n=10_000_000, d=8, K=16):
    """Peak resident memory of a fit beyond what the process held just before it (Linux)."""
    script = MEMORY_SCRIPT.format(benchmarks=str(HERE), n=n, d=d, K=K)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    data_bytes, before, peak = (int(v) for v in out.split())
    return {"n": n, "d": d, "K": K, "data_mb": data_bytes / 2**20, "rss_before_fit_mb": before / 2**20,
            "peak_during_fit_mb": peak / 2**20, "extra_over_data": (peak - before) / data_bytes}


def summarise(cells, ceiling, e2e, memory) -> list[str]:
    """The summary lines of a run (``ceiling``: the matrix-product measurement, or None where a log lacks it)."""
    f64 = [c for c in cells if c["dtype"] == "float64"]
    speedups = [c["speedup"] for c in f64]
    lines = [] if ceiling is None else [
        f"- float64 matrix-product ceiling: {ceiling['ceiling']:.1f} GFLOP/s "
        f"(1 thread {ceiling['gflops_1_thread']:.1f}, 2 threads {ceiling['gflops_2_threads']:.1f})"]
    if speedups:  # a run of float32 cells alone has none
        lines.append(
            f"- per-iteration speed-up over scikit-learn (float64, {len(f64)} cells): median "
            f"{statistics.median(speedups):.1f}x, minimum {min(speedups):.2f}x, maximum {max(speedups):.1f}x")
    heavy = [c for c in f64 if c["structure"] in ("full", "tied") and c["K"] * c["d"] >= 256]
    if heavy:
        fractions = [c["ceiling_fraction"] for c in heavy]
        lines.append(
            f"- full and tied cells with K*d >= 256 ({len(heavy)}): fraction of the ceiling median "
            f"{statistics.median(fractions):.0%}, minimum {min(fractions):.0%}; "
            f"{sum(f >= 0.5 for f in fractions)} at or above 50%"
        )
    floored = [c for c in cells if c.get("of_floor") is not None and c["n"] >= 100_000]
    if floored:
        for dtype in ("float64", "float32"):
            these = [c for c in floored if c["dtype"] == dtype]
            if not these:
                continue
            worst = max(these, key=lambda c: c["of_floor"])
            lines.append(
                f"- {dtype} cells with n >= 1e5 within 2x of the machine's floor: "
                f"{sum(c['of_floor'] <= 2.0 for c in these)} of {len(these)}; gaussmix's time as a multiple of "
                f"the floor: median {statistics.median(c['of_floor'] for c in these):.1f}, largest "
                f"{worst['of_floor']:.1f} ({worst['structure']} n={worst['n']:,} d={worst['d']} K={worst['K']}); "
                f"scikit-learn's median {statistics.median(c['sklearn_of_floor'] for c in these):.1f}")
    for peer in ("gmmx", "pomegranate"):
        ran = [c for c in cells if c.get(f"{peer}_ms") is not None]
        if ran:
            ratios = [c[f"{peer}_ms"] / c["gaussmix_ms"] for c in ran]
            slowest = min(ran, key=lambda c: c[f"{peer}_ms"] / c["gaussmix_ms"])
            lines.append(
                f"- {peer}: gaussmix faster in {sum(r > 1.0 for r in ratios)} of the {len(ran)} cells it ran "
                f"(its time / gaussmix's: median {statistics.median(ratios):.1f}x, smallest {min(ratios):.2f}x at "
                f"{slowest['dtype']} {slowest['structure']} n={slowest['n']:,} d={slowest['d']} K={slowest['K']})")
    same = [c for c in f64 if not c.get("component_dropped")]
    if same:
        lines.append(f"- largest relative difference of the final log-likelihoods (float64, {len(same)} cells): "
                     f"{max(c['loglik_rel_diff'] for c in same):.1e}")
    dropped = [c for c in f64 if c.get("component_dropped")]
    if dropped:
        lines.append(
            f"- {len(dropped)} more float64 cells where a component lost all its rows: gaussmix drops it "
            f"(weight 0), scikit-learn keeps it at weight ~1e-10, so the paths part (difference up to "
            f"{max(c['loglik_rel_diff'] for c in dropped):.1e}): "
            + ", ".join(f"{c['structure']} n={c['n']:,} d={c['d']} K={c['K']}" for c in dropped))
    f32 = {(c["n"], c["d"], c["K"], c["structure"]): c for c in cells if c["dtype"] == "float32"}
    pairs = [(f64c, f32[key]) for f64c in f64
             if (key := (f64c["n"], f64c["d"], f64c["K"], f64c["structure"])) in f32
             and f64c["structure"] in ("full", "tied") and f64c["K"] * f64c["d"] >= 256]
    in_float32 = [(a, b) for a, b in pairs if not b.get("float64_moments")]
    if in_float32:
        gains = [a["gaussmix_ms"] / b["gaussmix_ms"] for a, b in in_float32]
        large = [a["gaussmix_ms"] / b["gaussmix_ms"] for a, b in in_float32 if a["n"] >= 100_000 and a["d"] >= 32]
        lines.append(f"- float32 over float64 (gaussmix, compute-bound full/tied cells computed in float32, "
                     f"{len(gains)}): median {statistics.median(gains):.2f}x, minimum {min(gains):.2f}x, "
                     f"{sum(g >= 1.7 for g in gains)} at >= 1.7x"
                     + (f"; with n >= 1e5 and d >= 32 ({len(large)}): median {statistics.median(large):.2f}x"
                        if large else ""))
    switched = [b for _, b in pairs if b.get("float64_moments")]
    if switched:
        lines.append("- float32 cells EM computed in float64 (float32 rounding would swamp a covariance of "
                     "fewer rows than it needs): " + ", ".join(
                         f"{c['structure']} n={c['n']:,} d={c['d']} K={c['K']}" for c in switched))
    if e2e:
        ratios = [r["speedup"] for r in e2e]
        better = sum(r["gaussmix_loglik"] >= r["sklearn_loglik"] - 1e-6 for r in e2e)
        lines.append(f"- end-to-end (default init, tol 1e-3, {len(e2e)} fits): speed-up median "
                     f"{statistics.median(ratios):.1f}x, minimum {min(ratios):.1f}x; final log-likelihood at "
                     f"least as good in {better} of {len(e2e)}")
    if memory:
        lines.append(
            f"- peak memory fitting n={memory['n']:,}, d={memory['d']}, K={memory['K']} (full, 5 iterations): "
            f"data {memory['data_mb']:.0f} MB, process {memory['rss_before_fit_mb']:.0f} MB resident before the "
            f"fit and {memory['peak_during_fit_mb']:.0f} MB at its peak: the fit added "
            f"{memory['extra_over_data']:.1%} of the data's size"
        )
    return lines


def _marks(cell) -> str:
    """What sets a cell apart: a component dropped, a float32 cell that EM computed in float64."""
    return ((" (dropped)" if cell.get("component_dropped") else "")
            + (" (in float64)" if cell.get("float64_moments") else ""))


def _ms(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _peer(cell, name) -> str:
    """A peer's milliseconds, or why it has none (not installed, no such covariance, out of memory)."""
    if cell.get(f"{name}_ms") is not None:
        return f"{cell[f'{name}_ms']:.2f}"
    return {None: "n/a", "out of memory": "memory"}.get(cell.get(f"{name}_note"), "-")


def markdown(cells, summary, e2e, memory, meta) -> str:
    out = ["# gaussmix vs scikit-learn: EM iteration benchmark", "",
           f"Machine: {meta['machine']}; Python {meta['python']}; numpy {meta['numpy']}; "
           f"scikit-learn {meta['sklearn']}; gaussmix {meta['gaussmix']}; run {meta['date']} "
           f"({meta['mode']} grid, {meta['seconds']:.0f} s).", "", "## Summary", "", *summary, "",
           "## Per EM iteration, from the same starting parameters", "",
           "| dtype | structure | n | d | K | gaussmix ms | sklearn ms (1 / 2 threads) | speed-up | GFLOP/s | "
           "of ceiling | floor ms | x floor (sklearn) | gmmx ms | pomegranate ms | log-lik gaussmix | "
           "log-lik sklearn | rel. diff |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in cells:
        floor = "n/a" if c.get("floor_ms") is None else (
            f"{c['floor_ms']:.2f} | {c['of_floor']:.1f} ({c['sklearn_of_floor']:.1f})")
        if c.get("floor_ms") is None:
            floor += " | n/a"
        out.append(
            f"| {c['dtype']} | {c['structure']} | {c['n']:,} | {c['d']} | {c['K']} | {c['gaussmix_ms']:.2f} | "
            f"{_ms(c['sklearn_ms_1_thread'])} / {c['sklearn_ms_2_threads']:.2f} | {c['speedup']:.1f}x | "
            f"{c['gflops']:.1f} | {c['ceiling_fraction']:.0%} | {floor} | {_peer(c, 'gmmx')} | "
            f"{_peer(c, 'pomegranate')} | {c['loglik_gaussmix']:.9f} | "
            f"{c['loglik_sklearn']:.9f} | {c['loglik_rel_diff']:.1e}{_marks(c)} |")
    if e2e:
        out += ["", "## End to end (k-means init, tol 1e-3, random_state 0)", "",
                "| n | d | K | structure | gaussmix s (iterations) | sklearn s (iterations) | speed-up | "
                "log-lik gaussmix | log-lik sklearn |", "|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
        for r in e2e:
            out.append(f"| {r['n']:,} | {r['d']} | {r['K']} | {r['structure']} | {r['gaussmix_s']:.2f} "
                       f"({r['gaussmix_iterations']}) | {r['sklearn_s']:.2f} ({r['sklearn_iterations']}) | "
                       f"{r['speedup']:.1f}x | {r['gaussmix_loglik']:.6f} | {r['sklearn_loglik']:.6f} |")
    if memory:
        out += ["", "## Memory", "", summary[-1].lstrip("- ")]
    return "\n".join(out) + "\n"


def write_tables(result: dict, out: Path, stem: str) -> None:
    """``out/stem.md`` from a run's ``result``: the summary, every cell, and the cells that miss a target
    (:func:`targets.shortfalls`); a full run's also into this folder's README."""
    from targets import shortfalls

    table = markdown(result["cells"], result["summary"], result["end_to_end"], result["memory"], result["meta"])
    table += "\n## Cells that miss a target\n\n" + shortfalls(result)
    (out / f"{stem}.md").write_text(table)
    if stem == "latest" and out.resolve() == (HERE / "results").resolve():
        replace_section(HERE / "README.md", "cpu", table.split("\n", 1)[1].strip())


def replace_section(readme: Path, name: str, text: str) -> None:
    """Put ``text`` between the ``<!-- name:start -->`` and ``<!-- name:end -->`` markers of ``readme``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    content = readme.read_text()
    head, found, rest = content.partition(start)
    _, found_end, tail = rest.partition(end)
    if not (found and found_end):
        raise SystemExit(f"{readme} has no {start} ... {end} section")
    readme.write_text(f"{head}{start}\n{text}\n{end}{tail}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a one-minute subset")
    parser.add_argument("--out", default=str(HERE / "results"),
                        help="folder for latest.json and latest.md (quick.json and quick.md with --quick)")
    parser.add_argument("--no-end-to-end", action="store_true", help="skip the end-to-end fits")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    parser.add_argument("--no-peers", action="store_true", help="skip gmmx and pomegranate")
    parser.add_argument("--dtype", choices=("float64", "float32"), action="append",
                        help="only cells of this dtype (repeatable; default both)")
    parser.add_argument("--n", type=int, action="append", help="only cells of this many rows (repeatable)")
    parser.add_argument("--d", type=int, action="append", help="only cells of this many features (repeatable)")
    parser.add_argument("--K", type=int, action="append", help="only cells of this many components (repeatable)")
    parser.add_argument("--structure", choices=STRUCTURES, action="append",
                        help="only cells of this covariance type (repeatable)")
    parser.add_argument("--float32", choices=("all", "compute-bound"), default="compute-bound",
                        help="float32 cells of only full and tied covariances (where the float32 target applies; "
                             "the default), or of every structure")
    parser.add_argument("--render", metavar="JSON",
                        help="write the tables of an earlier run's results (its .md beside it; the README's for "
                             "results/latest.json) without running anything")
    args = parser.parse_args(argv)
    if args.render:
        source = Path(args.render)
        result = json.loads(source.read_text())
        write_tables(result, source.parent, source.stem)
        return 0
    import sklearn

    import gaussmix

    began = time.perf_counter()
    ceiling = matmul_ceiling()
    floor = machine_floor()
    print(f"matrix-product ceiling {ceiling['ceiling']:.1f} GFLOP/s (float32 {floor['float32_gflops']:.1f}); "
          f"exponential {floor['exp_ns_per_thread']:.2f} ns per thread; memory read "
          f"{floor['read_gb_per_s']:.1f} GB/s", flush=True)
    cells, failures = [], []
    only = {key: values for key, values in (("n", args.n), ("d", args.d), ("K", args.K),
                                            ("structure", args.structure)) if values}
    for n, d, K, structure, dtype in grid(args.quick, args.dtype, args.float32, only):
        try:
            cell = run_cell(n, d, K, structure, dtype, ceiling["ceiling"], floor, peers=not args.no_peers)
        except Exception as exc:  # a cell a library cannot fit is a result, reported in the summary
            failures.append(f"{np.dtype(dtype).name} {structure} n={n:,} d={d} K={K}: {type(exc).__name__}: {exc}")
            print(f"{np.dtype(dtype).name:8s} {structure:9s} n={n:>9,} d={d:>3} K={K:>3}: FAILED {failures[-1]}",
                  flush=True)
            continue
        cells.append(cell)
        print(f"{cell['dtype']:8s} {structure:9s} n={n:>9,} d={d:>3} K={K:>3}: gaussmix {cell['gaussmix_ms']:9.2f} ms"
              f"  sklearn {cell['sklearn_ms']:9.2f} ms  x{cell['speedup']:5.1f}  {cell['ceiling_fraction']:4.0%}"
              f"  floor x{cell['of_floor']:4.1f}  gmmx {_peer(cell, 'gmmx')}  pomegranate {_peer(cell, 'pomegranate')}"
              f"  rel.diff {cell['loglik_rel_diff']:.1e}{_marks(cell)}", flush=True)
    # The ceiling and the floor again: the cells are taken against the faster of the two measurements.
    ceiling, floor = best_machine((ceiling, floor), (matmul_ceiling(), machine_floor()))
    cells = [rescaled(cell, ceiling["ceiling"], floor) for cell in cells]
    print(f"at the end, the faster of both measurements: matrix-product ceiling {ceiling['ceiling']:.1f} GFLOP/s "
          f"(float32 {floor['float32_gflops']:.1f}); exponential {floor['exp_ns_per_thread']:.2f} ns per thread; "
          f"memory read {floor['read_gb_per_s']:.1f} GB/s (the table and summary use these)", flush=True)
    e2e = [] if args.no_end_to_end else end_to_end(args.quick)
    memory = None if (args.no_memory or args.quick) else peak_memory()
    summary = summarise(cells, ceiling, e2e, memory)
    if failures:
        summary.insert(3, f"- cells that could not be run ({len(failures)}; scikit-learn's own errors name it): "
                          + "; ".join(failures))
    summary.insert(1, "- the machine's floor per cell: products at the ceilings (float32 "
                      f"{floor['float32_gflops']:.1f} GFLOP/s), {floor['exp_ns_per_thread']:.2f} ns per "
                      f"exponential per thread on {floor['threads']} threads, one read of the data at "
                      f"{floor['read_gb_per_s']:.1f} GB/s")
    meta = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "python": platform.python_version(),
        "numpy": np.__version__, "sklearn": sklearn.__version__, "gaussmix": gaussmix.__version__,
        "date": time.strftime("%Y-%m-%d"), "mode": "quick" if args.quick else ("subset" if only else "full"),
        "seconds": time.perf_counter() - began,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # A quick run or a subset of the grid never replaces the full run's results.
    stem = "quick" if args.quick else ("subset" if only else "latest")
    result = {"meta": meta, "ceiling": ceiling, "floor": floor, "cells": cells, "end_to_end": e2e, "memory": memory,
              "summary": summary}
    (out / f"{stem}.json").write_text(json.dumps(result, indent=1))
    write_tables(result, out, stem)
    print("\n".join(summary))
    print(f"results written to {out / (stem + '.md')} and {out / (stem + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
