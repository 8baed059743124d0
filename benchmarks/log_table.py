"""The per-cell table of a bench_em.py run from its printed log (for a run that did not reach its end).

    python benchmarks/log_table.py benchmarks/results/grid-2026-12-04c.log            # the table
    python benchmarks/log_table.py --targets benchmarks/results/grid-2026-12-04c.log  # summary, missed targets

With ``--targets`` the float32 cells are those of full and tied covariances, as in the grid's own summary.

The log has each cell's times, speed-up and multiple of the floor as
measured against the ceiling and floor taken at the start of the run (a
finished run takes the faster of that and a second measurement at its end).
"""

from __future__ import annotations

import re
import statistics
import sys
from pathlib import Path

LINE = re.compile(
    r"^(float\d+)\s+(\w+)\s+n=\s*([\d,]+) d=\s*(\d+) K=\s*(\d+): gaussmix\s+([\d.]+) ms\s+sklearn\s+([\d.]+) ms\s+"
    r"x\s*([\d.]+)\s+(\d+)%\s+floor x\s*([\d.]+)\s+gmmx (\S+)\s+pomegranate (\S+)\s+rel.diff (\S+)(.*)$")
MACHINE = re.compile(r"^matrix-product ceiling ([\d.]+) GFLOP/s \(float32 ([\d.]+)\); exponential ([\d.]+) ns per "
                     r"thread; memory read ([\d.]+) GB/s")


def table(lines) -> str:
    out = ["| dtype | structure | n | d | K | gaussmix ms | sklearn ms | speed-up | of ceiling | x floor | gmmx ms | "
           "pomegranate ms | rel. diff |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for line in lines:
        match = LINE.match(line)
        if match:
            (dtype, structure, n, d, K, ours, theirs, speedup, ceiling, floor, gmmx, pomegranate, diff,
             marks) = match.groups()
            out.append(f"| {dtype} | {structure} | {n} | {d} | {K} | {ours} | {theirs} | {speedup}x | {ceiling}% | "
                       f"{floor} | {gmmx} | {pomegranate} | {diff}{marks.rstrip()} |")
    return "\n".join(out)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def result(lines) -> dict:
    """The log as a results dict for :func:`targets.shortfalls`: the machine measured at the start, and each
    cell with what the log gives of it."""
    machine, cells = None, []
    for line in lines:
        if machine is None and (found := MACHINE.match(line)):
            ceiling, float32, exp_ns, read = (float(v) for v in found.groups())
            machine = ({"ceiling": ceiling}, {"float32_gflops": float32, "exp_ns_per_thread": exp_ns, "threads": 2,
                                              "read_gb_per_s": read})
        match = LINE.match(line)
        if match:
            dtype, structure, n, d, K, ours, theirs, _, _, floor, gmmx, pomegranate, diff, marks = match.groups()
            cells.append({
                "dtype": dtype, "structure": structure, "n": int(n.replace(",", "")), "d": int(d), "K": int(K),
                "gaussmix_ms": float(ours), "sklearn_ms": float(theirs), "speedup": float(theirs) / float(ours),
                "of_floor": float(floor), "sklearn_of_floor": float(floor) * float(theirs) / float(ours),
                "gmmx_ms": _number(gmmx), "pomegranate_ms": _number(pomegranate), "loglik_rel_diff": float(diff),
                "component_dropped": "(dropped)" in marks, "float64_moments": "(in float64)" in marks})
    if machine is None:
        raise SystemExit("no 'matrix-product ceiling' line at the start of the log")
    return {"ceiling": machine[0], "floor": machine[1], "cells": cells}


def summary(run: dict) -> str:
    """The headline figures of the float64 cells."""
    f64 = [c for c in run["cells"] if c["dtype"] == "float64"]
    speedups = [c["speedup"] for c in f64]
    lines = [f"- float64 cells: {len(f64)}; speed-up median {statistics.median(speedups):.1f}x, minimum "
             f"{min(speedups):.2f}x, maximum {max(speedups):.1f}x; {sum(s >= 3 for s in speedups)} at >= 3x"]
    for key in ("structure", "n", "d", "K"):
        values = sorted({c[key] for c in f64}, key=str if key == "structure" else None)
        lines.append(f"- median speed-up by {key}: " + ", ".join(
            f"{v}: {statistics.median(c['speedup'] for c in f64 if c[key] == v):.1f}x" for v in values))
    for dtype in ("float64", "float32"):
        large = [c for c in run["cells"] if c["dtype"] == dtype and c["n"] >= 100_000]
        if large:
            lines.append(f"- {dtype} cells with n >= 1e5 within 2x of the floor: {sum(c['of_floor'] <= 2 for c in large)}"
                         f" of {len(large)}; median {statistics.median(c['of_floor'] for c in large):.1f}x the floor "
                         f"(scikit-learn's {statistics.median(c['sklearn_of_floor'] for c in large):.1f}x)")
    for peer in ("gmmx", "pomegranate"):
        ran = [c for c in run["cells"] if c[f"{peer}_ms"] is not None]
        if ran:
            ratios = [c[f"{peer}_ms"] / c["gaussmix_ms"] for c in ran]
            lines.append(f"- {peer}: gaussmix faster in {sum(r > 1 for r in ratios)} of the {len(ran)} cells it ran "
                         f"(its time / gaussmix's: median {statistics.median(ratios):.1f}x, smallest {min(ratios):.2f}x)")
    same = [c for c in f64 if not c["component_dropped"]]
    lines.append(f"- largest relative difference of the final log-likelihoods (float64, {len(same)} cells without a "
                 f"dropped component): {max(c['loglik_rel_diff'] for c in same):.1e}")
    return "\n".join(lines)


if __name__ == "__main__":
    path = Path(sys.argv[-1])
    text = path.read_text().splitlines()
    if "--targets" in sys.argv[1:-1]:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from targets import shortfalls

        run = result(text)
        # as the grid's own summary: float32 cells of full and tied covariances only (--float32 all adds others)
        run["cells"] = [c for c in run["cells"] if c["dtype"] == "float64" or c["structure"] in ("full", "tied")]
        print(summary(run) + "\n\n" + shortfalls(run))
    else:
        print(table(text))
