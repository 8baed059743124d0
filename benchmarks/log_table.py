"""The per-cell table of a bench_em.py run from its printed log (for a run that did not reach its end).

    python benchmarks/log_table.py benchmarks/results/grid-2026-12-04.log
"""

from __future__ import annotations

import re
import sys

LINE = re.compile(
    r"^(float\d+)\s+(\w+)\s+n=\s*([\d,]+) d=\s*(\d+) K=\s*(\d+): gaussmix\s+([\d.]+) ms\s+sklearn\s+([\d.]+) ms\s+"
    r"x\s*([\d.]+)\s+(\d+)%\s+floor x\s*([\d.]+)\s+gmmx (\S+)\s+pomegranate (\S+)\s+rel.diff (\S+)(.*)$")


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


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:
        print(table(handle))
