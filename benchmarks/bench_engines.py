"""The torch and Dask engines against the NumPy engine, per EM iteration, from the same parameters.

    python3 run.py bench-engines            # about 5 minutes on 2 cores
    python3 run.py bench-engines --quick    # under a minute

Measured, side by side in one run:

* torch: milliseconds per EM iteration (E-step, statistics, M-step) on
  every torch device present (the CPU always; a CUDA GPU when there is one,
  with achieved TFLOP/s against the device's float32 peak), against the NumPy
  engine and scikit-learn on the same data;
* Dask: the per-iteration overhead of one map and one tree reduction
  against the NumPy engine on the same cores (threaded scheduler), and
  throughput with a ``distributed.LocalCluster`` of 1 and 2 single-threaded
  workers.

Results go to ``benchmarks/results/engines.json`` and ``engines.md``; a full
run with the default folder also refreshes the table in
``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_em import make_data, replace_section, starting_point, useful_flops  # noqa: E402

#: Dense float32 peaks (TFLOP/s, without sparsity) of GPUs this may run on, from the vendors' data sheets.
GPU_PEAKS = {"H100 SXM": 67.0, "H100 PCIe": 51.0, "H100": 67.0, "H200": 67.0, "A100": 19.5, "L4": 30.3, "T4": 8.1}


def _params(X, K, structure):
    from gaussmix import GaussianMixture
    from gaussmix.covariance import get_structure

    s = get_structure(structure)
    weights, means, precisions = starting_point(X, K, structure)
    layout = s.layout
    covariances = layout.covariances_from_precisions_cholesky(layout.precisions_cholesky_from_precisions(precisions))
    return GaussianMixture.from_parameters(weights, means, covariances, covariance_type=structure)._params_from_attributes()


def time_iterations(data, structure, params, iterations, synchronise=lambda: None):
    """Median seconds per EM iteration on engine ``data`` and the final lower bound."""
    from gaussmix.covariance import get_structure
    from gaussmix.em.models import MaximumLikelihood
    from gaussmix.em.scale import DataScale

    s = get_structure(structure)
    model = MaximumLikelihood(s, DataScale.of(data, 1e-6))
    stats = data.estep(s, model.kernel_terms(params, data.shift))  # warm-up (kernels, caches, worker imports)
    times = []
    for _ in range(iterations):
        synchronise()
        begin = time.perf_counter()
        stats = data.estep(s, model.kernel_terms(params, data.shift))
        params, _ = model.update(stats, params)
        synchronise()
        times.append(time.perf_counter() - begin)
    return statistics.median(times), stats.log_likelihood / stats.total_weight


def sklearn_iteration(X, K, structure, iterations=2):
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    weights, means, precisions = starting_point(X, K, structure)
    model = SkGaussianMixture(K, covariance_type=structure, weights_init=weights, means_init=means,
                              precisions_init=precisions, max_iter=iterations, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        begin = time.perf_counter()
        model.fit(X)
    return (time.perf_counter() - begin) / iterations


def torch_cells(quick):
    import torch

    from gaussmix.engines._chunked import ChunkedData
    from gaussmix.engines._torch import TorchNamespace

    cells = [(200_000, 8, 16, "full"), (200_000, 8, 16, "diag")] if quick else [
        (1_000_000, 8, 16, "full"), (1_000_000, 8, 16, "diag"), (200_000, 32, 16, "full")]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    gpu_cells = [] if quick else [(1_000_000, 64, 64, "full"), (10_000_000, 8, 16, "diag")]
    rows = []
    for device in devices:
        for n, d, K, structure in cells + (gpu_cells if device == "cuda" else []):
            for dtype in (np.float64, np.float32):
                X = make_data(n, d, K, dtype)
                params = _params(X, K, structure)
                iterations = 3 if quick else 5
                numpy_s, numpy_bound = time_iterations(ChunkedData(X), structure, params, iterations)
                xp = TorchNamespace(device)
                sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
                torch_s, torch_bound = time_iterations(
                    ChunkedData(xp.asarray(X), xp=xp), structure, params, iterations, sync)
                row = {"device": device if device == "cpu" else torch.cuda.get_device_name(), "n": n, "d": d, "K": K,
                       "structure": structure, "dtype": np.dtype(dtype).name, "numpy_ms": 1e3 * numpy_s,
                       "torch_ms": 1e3 * torch_s, "bound_rel_diff": abs(torch_bound - numpy_bound) / abs(numpy_bound),
                       "tflops": useful_flops(n, d, K, structure) / torch_s / 1e12}
                if dtype == np.float64 and device == "cpu":
                    row["sklearn_ms"] = 1e3 * sklearn_iteration(X, K, structure)
                if device == "cuda":
                    name = torch.cuda.get_device_name()
                    peak = next((v for k, v in GPU_PEAKS.items() if k in name), None)
                    row["peak_fraction"] = None if peak is None else row["tflops"] / peak
                rows.append(row)
                print(f"torch {row['device']} {structure} n={n:,} d={d} K={K} {row['dtype']}: numpy "
                      f"{row['numpy_ms']:.1f} ms, torch {row['torch_ms']:.1f} ms", flush=True)
    return rows


def dask_cells(quick):
    import dask
    import dask.array as da
    from distributed import Client, LocalCluster

    from gaussmix.engines._chunked import ChunkedData
    from gaussmix.engines._dask import DaskData

    n, d, K = (200_000, 8, 16) if quick else (2_000_000, 8, 16)
    rows = []
    for structure in ("full", "diag"):
        X = make_data(n, d, K, np.float64)
        params = _params(X, K, structure)
        iterations = 3 if quick else 5
        numpy_s, numpy_bound = time_iterations(ChunkedData(X), structure, params, iterations)
        dX = da.from_array(X, chunks=(n // 8, d))
        with dask.config.set(scheduler="threads"):
            threads_s, threads_bound = time_iterations(DaskData(dX), structure, params, iterations)
        row = {"structure": structure, "n": n, "d": d, "K": K, "blocks": 8, "numpy_ms": 1e3 * numpy_s,
               "threads_ms": 1e3 * threads_s, "bound_rel_diff": abs(threads_bound - numpy_bound) / abs(numpy_bound)}
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                              silence_logs=50) as cluster, Client(cluster) as client:
                persisted = client.persist(dX)
                client.wait_for_workers(workers)
                seconds, _ = time_iterations(DaskData(persisted), structure, params, iterations)
            row[f"cluster_{workers}_ms"] = 1e3 * seconds
            row[f"cluster_{workers}_rows_per_s"] = n / seconds
        rows.append(row)
        print(f"dask {structure} n={n:,}: numpy {row['numpy_ms']:.1f} ms, threads {row['threads_ms']:.1f} ms, "
              f"1 worker {row['cluster_1_ms']:.1f} ms, 2 workers {row['cluster_2_ms']:.1f} ms", flush=True)
    return rows


def markdown(torch_rows, dask_rows, meta) -> str:
    out = [f"Machine: {meta['machine']}; torch {meta['torch']}; dask {meta['dask']}; run {meta['date']} "
           f"({meta['mode']}, {meta['seconds']:.0f} s).", "",
           "### torch engine, per EM iteration from the same parameters", "",
           "| device | structure | n | d | K | dtype | NumPy engine ms | torch ms | torch / NumPy | "
           "scikit-learn ms | TFLOP/s | of fp32 peak | lower bound rel. diff |",
           "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in torch_rows:
        sk = f"{r['sklearn_ms']:.1f}" if "sklearn_ms" in r else ""
        peak = f"{r['peak_fraction']:.0%}" if r.get("peak_fraction") is not None else ""
        out.append(f"| {r['device']} | {r['structure']} | {r['n']:,} | {r['d']} | {r['K']} | {r['dtype']} | "
                   f"{r['numpy_ms']:.1f} | {r['torch_ms']:.1f} | {r['numpy_ms'] / r['torch_ms']:.2f}x | {sk} | "
                   f"{r['tflops']:.3f} | {peak} | {r['bound_rel_diff']:.1e} |")
    out += ["", "### Dask engine, per EM iteration (8 blocks)", "",
            "| structure | n | d | K | NumPy engine ms | Dask, threads ms (overhead) | LocalCluster 1 worker ms | "
            "2 workers ms | speed-up 1 -> 2 workers | lower bound rel. diff |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in dask_rows:
        out.append(f"| {r['structure']} | {r['n']:,} | {r['d']} | {r['K']} | {r['numpy_ms']:.1f} | "
                   f"{r['threads_ms']:.1f} ({r['threads_ms'] / r['numpy_ms'] - 1:+.0%}) | {r['cluster_1_ms']:.1f} | "
                   f"{r['cluster_2_ms']:.1f} | {r['cluster_1_ms'] / r['cluster_2_ms']:.2f}x | "
                   f"{r['bound_rel_diff']:.1e} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small subset")
    parser.add_argument("--out", default=str(HERE / "results"), help="folder for engines.json and engines.md")
    args = parser.parse_args(argv)
    import dask
    import torch

    began = time.perf_counter()
    torch_rows = torch_cells(args.quick)
    dask_rows = dask_cells(args.quick)
    meta = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "torch": torch.__version__,
            "dask": dask.__version__, "date": time.strftime("%Y-%m-%d"),
            "mode": "quick" if args.quick else "full", "seconds": time.perf_counter() - began}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "engines-quick" if args.quick else "engines"  # a quick run never replaces the full results
    (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "torch": torch_rows, "dask": dask_rows}, indent=1))
    table = markdown(torch_rows, dask_rows, meta)
    (out / f"{stem}.md").write_text(table)
    if not args.quick and out.resolve() == (HERE / "results").resolve():
        replace_section(HERE / "README.md", "engines", table.strip())
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
