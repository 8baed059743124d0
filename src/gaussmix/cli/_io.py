"""Reading and writing tables for the command line: CSV/TSV, Parquet, .npy.

Every problem with a file raises :class:`DataError` with a one-line message
that names the file and, where it applies, the line and column.
"""

from __future__ import annotations

import csv
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

READABLE = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".npy")
MISSING = {"", "na", "n/a", "null", "none", "?"}


class DataError(ValueError):
    """A data file cannot be used; the message is one line."""


@dataclass(frozen=True)
class Table:
    """Numeric columns read from a file."""

    values: np.ndarray  # (n_rows, n_columns) float64
    names: list[str] | None  # None when the file has no column names


def _suffix(path: str) -> str:
    return os.path.splitext(path)[1].lower()


def read_table(path: str, columns: Sequence[str] | None = None) -> Table:
    """Read the numeric ``columns`` (names or 0-based indices; default all) of a data file."""
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a directory, not a data file")
    suffix = _suffix(path)
    if suffix in (".csv", ".tsv", ".txt"):
        return _read_csv(path, columns, delimiter="\t" if suffix == ".tsv" else ",")
    if suffix in (".parquet", ".pq"):
        return _read_parquet(path, columns)
    if suffix == ".npy":
        return _read_npy(path, columns)
    raise DataError(f"{path}: unsupported file type {suffix or '(none)'!r}; use .csv, .tsv, .parquet or .npy")


def peek_names(path: str) -> list[str] | None:
    """The column names of a data file, or None when it has none (or cannot tell)."""
    suffix = _suffix(path)
    try:
        if suffix in (".csv", ".tsv", ".txt"):
            with open(path, newline="", encoding="utf-8-sig") as handle:
                for row in csv.reader(handle, delimiter="\t" if suffix == ".tsv" else ","):
                    if any(cell.strip() for cell in row):
                        cells = [cell.strip() for cell in row]
                        return cells if any(_number(c) is None for c in cells) else None
        elif suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return [str(n) for n in pq.read_schema(path).names]
    except Exception:  # unreadable files are reported by read_table
        return None
    return None


def _select(names: list[str], columns: Sequence[str] | None, path: str) -> list[int]:
    if not columns:
        return list(range(len(names)))
    index = []
    for column in columns:
        if column in names:
            index.append(names.index(column))
        elif column.lstrip("-").isdigit() and 0 <= int(column) < len(names):
            index.append(int(column))
        else:
            listed = ", ".join(names) if len(names) <= 12 else ", ".join(names[:12]) + ", ..."
            raise DataError(f"{path}: no column {column!r} (columns: {listed})")
    if len(set(index)) != len(index):
        raise DataError(f"{path}: a column is selected twice in --columns {' '.join(columns)}")
    return index


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _read_csv(path: str, columns, delimiter: str) -> Table:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = [(n, row) for n, row in enumerate(csv.reader(handle, delimiter=delimiter), start=1)
                    if any(cell.strip() for cell in row)]
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file") from None
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV ({exc})") from None
    if not rows:
        raise DataError(f"{path}: empty file (no rows)")
    first = [cell.strip() for cell in rows[0][1]]
    has_header = any(_number(cell) is None for cell in first)
    if has_header:
        names, data = first, rows[1:]
        if not data:
            raise DataError(f"{path}: has a header but no data rows")
    else:
        names, data = [f"x{j}" for j in range(len(first))], rows
    index = _select(names, columns, path)
    values = np.empty((len(data), len(index)))
    for r, (line, row) in enumerate(data):
        if len(row) != len(names):
            raise DataError(
                f"{path}: line {line} has {len(row)} field{'s' * (len(row) != 1)}, expected {len(names)}"
            )
        for c, j in enumerate(index):
            cell = row[j].strip()
            if cell.lower() in MISSING:
                raise DataError(f"{path}: missing value in column {names[j]!r} at line {line}")
            number = _number(cell)
            if number is None:
                raise DataError(f"{path}: non-numeric value {cell[:40]!r} in column {names[j]!r} at line {line}")
            if not math.isfinite(number):
                raise DataError(f"{path}: non-finite value {cell!r} in column {names[j]!r} at line {line}")
            values[r, c] = number
    return Table(values, [names[j] for j in index] if has_header else None)


def _read_parquet(path: str, columns) -> Table:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading Parquet needs pyarrow: pip install 'gaussmix[parquet]'") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise DataError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0][:160]})") from None
    names = [str(n) for n in table.column_names]
    if not names:
        raise DataError(f"{path}: the Parquet file has no columns")
    if table.num_rows == 0:
        raise DataError(f"{path}: has columns but no data rows")
    index = _select(names, columns, path)
    values = np.empty((table.num_rows, len(index)))
    for c, j in enumerate(index):
        column = table.column(j)
        if column.null_count:
            row = next(i for i, v in enumerate(column.is_null().to_pylist()) if v)
            raise DataError(f"{path}: missing value in column {names[j]!r} at row {row}")
        try:
            data = column.to_numpy().astype(np.float64)
        except (TypeError, ValueError):
            raise DataError(f"{path}: column {names[j]!r} is not numeric ({column.type})") from None
        bad = np.flatnonzero(~np.isfinite(data))
        if bad.size:
            raise DataError(f"{path}: non-finite value in column {names[j]!r} at row {bad[0]}")
        values[:, c] = data
    return Table(values, [names[j] for j in index])


def _read_npy(path: str, columns) -> Table:
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"{path}: not a numeric .npy array ({str(exc).splitlines()[0][:120]})") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npy file ({str(exc).splitlines()[0][:120]})") from None
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise DataError(f"{path}: expected a 1-D or 2-D array, got shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise DataError(f"{path}: expected numbers, got dtype {array.dtype}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise DataError(f"{path}: empty array of shape {array.shape}")
    names = [f"x{j}" for j in range(array.shape[1])]
    index = _select(names, columns, path)
    values = array[:, index].astype(np.float64)
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        raise DataError(f"{path}: non-finite value in column {index[bad[0, 1]]} at row {bad[0, 0]}")
    return Table(values, None)


def write_table(path: str | None, columns: dict[str, np.ndarray]) -> None:
    """Write equal-length columns to ``path`` (.csv, .tsv, .parquet, .npy) or CSV on stdout."""
    names = list(columns)
    if path is None or path == "-":
        _write_csv(sys.stdout, names, columns, ",")
        return
    suffix = _suffix(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise DataError(f"{path}: directory {directory} does not exist")
    if suffix in (".csv", ".tsv", ".txt"):
        with open(path, "w", newline="", encoding="utf-8") as handle:
            _write_csv(handle, names, columns, "\t" if suffix == ".tsv" else ",")
    elif suffix in (".parquet", ".pq"):
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise DataError(f"{path}: writing Parquet needs pyarrow: pip install 'gaussmix[parquet]'") from None
        pq.write_table(pa.table({n: np.asarray(columns[n]) for n in names}), path)
    elif suffix == ".npy":
        np.save(path, np.column_stack([np.asarray(columns[n], dtype=np.float64) for n in names]))
    else:
        raise DataError(f"{path}: unsupported output type {suffix or '(none)'!r}; use .csv, .tsv, .parquet or .npy")


def _write_csv(handle, names, columns, delimiter) -> None:
    writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
    writer.writerow(names)
    data = [np.asarray(columns[n]) for n in names]
    for row in zip(*data):
        writer.writerow([repr(float(v)) if isinstance(v, (float, np.floating)) else str(v) for v in row])
