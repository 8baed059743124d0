"""Reading CSV: gaussmix's reader against pandas and pyarrow, side by side in one run.

    python benchmarks/bench_io.py [--rows N]

Writes one table to standard output: median seconds of 3 reads of the same
file (N rows, 2 numeric columns and a text column, as an exported data set
looks) and each reader's time relative to gaussmix's.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def make_file(directory: Path, rows: int) -> Path:
    rng = np.random.RandomState(0)
    values = rng.normal(size=(rows, 2)) * [1.0, 100.0]
    path = directory / "data.csv"
    with open(path, "w") as handle:
        handle.write("x,y,site\n")
        for start in range(0, rows, 100_000):
            block = values[start : start + 100_000]
            handle.write("".join(f"{a!r},{b!r},s{(start + i) % 7}\n" for i, (a, b) in enumerate(block.tolist())))
    return path


def median_seconds(read, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        read()
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    from gaussmix.cli._io import read_table

    with tempfile.TemporaryDirectory() as directory:
        path = make_file(Path(directory), args.rows)
        readers = {"gaussmix": lambda: read_table(str(path), ["x", "y"])}
        try:
            import pandas as pd

            readers["pandas"] = lambda: pd.read_csv(path, usecols=["x", "y"]).to_numpy()
        except ImportError:
            pass
        try:
            import pyarrow.csv as pc

            readers["pyarrow"] = lambda: pc.read_csv(
                path, convert_options=pc.ConvertOptions(include_columns=["x", "y"])
            )
        except ImportError:
            pass
        seconds = {name: median_seconds(read) for name, read in readers.items()}
    print(f"{args.rows:,} rows x (2 numeric + 1 text) columns, median of 3 reads")
    print(f"{'reader':<10} {'seconds':>8} {'vs gaussmix':>12}")
    for name, value in seconds.items():
        print(f"{name:<10} {value:8.3f} {value / seconds['gaussmix']:11.2f}x")


if __name__ == "__main__":
    main()
