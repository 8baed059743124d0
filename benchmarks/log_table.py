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

sys.path.insert(0, str(Path(__file__).resolve().parent))

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
            dtype, structure, n, d, K, ours, theirs, _, ceiling, floor, gmmx, pomegranate, diff, marks = match.groups()
            cells.append({
                "dtype": dtype, "structure": structure, "n": int(n.replace(",", "")), "d": int(d), "K": int(K),
                "gaussmix_ms": float(ours), "sklearn_ms": float(theirs), "speedup": float(theirs) / float(ours),
                "ceiling_fraction": float(ceiling) / 100,
                "of_floor": float(floor), "sklearn_of_floor": float(floor) * float(theirs) / float(ours),
                "gmmx_ms": _number(gmmx), "pomegranate_ms": _number(pomegranate), "loglik_rel_diff": float(diff),
                "component_dropped": "(dropped)" in marks, "float64_moments": "(in float64)" in marks})
    if machine is None:
        raise SystemExit("no 'matrix-product ceiling' line at the start of the log")
    return {"ceiling": machine[0], "floor": machine[1], "cells": cells}


def summary(run: dict) -> str:
    """The run's summary lines as a finished run gives them, and its median speed-ups by structure, n, d and K."""
    from bench_em import summarise

    f64 = [c for c in run["cells"] if c["dtype"] == "float64"]
    lines = summarise(run["cells"], None, [], None)
    for key in ("structure", "n", "d", "K"):
        values = sorted({c[key] for c in f64}, key=str if key == "structure" else None)
        lines.append(f"- median speed-up by {key}: " + ", ".join(
            f"{v}: {statistics.median(c['speedup'] for c in f64 if c[key] == v):.1f}x" for v in values))
    return "\n".join(lines)


if __name__ == "__main__":
    path = Path(sys.argv[-1])
    text = path.read_text().splitlines()
    if "--targets" in sys.argv[1:-1]:
        from targets import shortfalls

        run = result(text)
        # as the grid's own summary: float32 cells of full and tied covariances only (--float32 all adds others)
        run["cells"] = [c for c in run["cells"] if c["dtype"] == "float64" or c["structure"] in ("full", "tied")]
        print(summary(run) + "\n\n" + shortfalls(run))
    else:
        print(table(text))
