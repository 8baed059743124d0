"""Reading and writing tables for the command line: CSV/TSV (plain, gzip or standard input), Parquet, .npy.

Every problem with a file raises :class:`DataError` with a one-line message
that names the file and, where it applies, the line and column.

CSV follows CSV conventions: a number is written in decimal or scientific
notation (``-1.5``, ``2e-3``), optionally quoted and surrounded by spaces;
Python's literal syntax (``1_000``, ``0x10``) is not a number. Text files
are parsed by pyarrow's CSV reader; only when it refuses a file does a
line-by-line reading find the line and column to report.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
import re
import sys
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

READABLE = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".npy")
MISSING = {"", "na", "n/a", "null", "none", "?"}
NUMBER = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*\Z")
INTEGER = re.compile(r"\s*[+-]?\d+\s*\Z")
NON_FINITE = re.compile(r"\s*[+-]?(?:inf|infinity|nan)\s*\Z", re.IGNORECASE)
DELIMITERS = {"comma": ",", "tab": "\t", "\\t": "\t", "semicolon": ";", "space": " ", "pipe": "|"}
STDIN = "-"


class DataError(ValueError):
    """A data file cannot be used; the message is one line."""


@dataclass(frozen=True)
class Table:
    """Numeric columns read from a file."""

    values: np.ndarray  # (n_rows, n_columns) float64
    names: list[str] | None  # None when the file has no usable column names
    ids: np.ndarray | None = None  # the identifier column's text, one per row
    id_name: str | None = None
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class ReadOptions:
    """How to read a data file (the command line's --columns, --header, --delimiter, --id-column)."""

    columns: Sequence[str] | None = None
    header: bool | None = None  # None: decide from the first line
    delimiter: str | None = None
    id_column: str | None = None


def parse_delimiter(text: str) -> str:
    """A --delimiter value: one character, or comma, tab, semicolon, space, pipe."""
    value = DELIMITERS.get(text.lower(), text)
    if len(value) != 1 or value in "\"\r\n" or value.isalnum() or value in ".+-":
        raise ValueError(f"expected one character or comma, tab, semicolon, space, pipe; got {text!r}")
    return value


def _suffix(path: str) -> str:
    base = path[:-3] if path.lower().endswith(".gz") else path
    return os.path.splitext(base)[1].lower()


def _display(path: str) -> str:
    return "standard input" if path == STDIN else path


def read_table(path: str, columns: Sequence[str] | None = None, *, options: ReadOptions | None = None,
               model_names: Sequence[str] | None = None) -> Table:
    """Read numeric columns of a data file (``-`` for CSV on standard input).

    Columns are ``columns`` (names or 0-based indices), else the model's
    feature names when the file has a header, else all columns (except an
    identifier column).
    """
    options = options or ReadOptions()
    if columns is not None:
        options = ReadOptions(columns, options.header, options.delimiter, options.id_column)
    if path != STDIN:
        if not os.path.exists(path):
            raise DataError(f"{path}: no such file")
        if os.path.isdir(path):
            raise DataError(f"{path}: is a directory, not a data file")
    suffix = ".csv" if path == STDIN else _suffix(path)
    if suffix in (".parquet", ".pq"):
        return _read_parquet(path, options, model_names)
    if suffix == ".npy":
        return _read_npy(path, options, model_names)
    if suffix in (".csv", ".tsv", ".txt") or options.delimiter is not None:
        default = "\t" if suffix == ".tsv" else ","
        return _read_text(path, options, model_names, options.delimiter or default)
    raise DataError(f"{path}: unsupported file type {suffix or '(none)'!r}; use .csv, .tsv, .parquet or .npy "
                    "(or give --delimiter for another text file)")


# -- choosing columns ---------------------------------------------------------------------
def _column(names: list[str], column: str, path: str, what: str = "column") -> int:
    matches = [j for j, n in enumerate(names) if n == column]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise DataError(f"{path}: {len(matches)} columns are named {column!r} (columns {matches[0]} and "
                        f"{matches[1]}); choose by 0-based index instead")
    if column.lstrip("-").isdigit() and 0 <= int(column) < len(names):
        return int(column)
    listed = ", ".join(n if n else "''" for n in names[:12]) + (", ..." if len(names) > 12 else "")
    raise DataError(f"{path}: no {what} {column!r} (columns: {listed})")


@dataclass(frozen=True)
class _Layout:
    """Which columns to read: feature indices, their names and the identifier column."""

    index: list[int]
    names: list[str] | None
    id_index: int | None
    id_name: str | None
    notes: tuple[str, ...]


def _layout(path: str, names: list[str], has_names: bool, options: ReadOptions,
            model_names: Sequence[str] | None) -> _Layout:
    where = _display(path)
    notes = []
    id_index = None
    if options.id_column is not None:
        id_index = _column(names, options.id_column, where, "id column")
    elif has_names and len(names) > 1 and names[0] == "":
        id_index = 0
        if not options.columns:
            notes.append(f"{where}: the first column has no name (row names, as R writes them): it identifies "
                         "rows and is not used as a feature")
    if options.columns:
        index = [_column(names, c, where) for c in options.columns]
        if len(set(index)) != len(index):
            raise DataError(f"{where}: a column is selected twice in --columns {' '.join(options.columns)}")
    elif model_names is not None and has_names and len(set(model_names)) == len(model_names):
        missing = [n for n in model_names if n not in names]
        if missing:
            raise DataError(f"{where}: no column {missing[0]!r}, which the model needs "
                            f"(model features: {', '.join(model_names)})")
        index = [_column(names, n, where) for n in model_names]
    else:
        index = [j for j in range(len(names)) if j != id_index]
        if not index:
            raise DataError(f"{where}: no columns left to use besides the id column")
    chosen = [names[j] for j in index] if has_names else None
    if chosen is not None and len(set(chosen)) != len(chosen):
        repeated = next(n for n in chosen if chosen.count(n) > 1)
        notes.append(f"{where}: more than one column is named {repeated!r}, so the columns are referred to by "
                     "position, not by name")
        chosen = None
    id_name = None
    if id_index is not None:
        id_name = names[id_index] if has_names and names[id_index] else "id"
    return _Layout(index, chosen, id_index, id_name, tuple(notes))


# -- text files -----------------------------------------------------------------------------
def _read_bytes(path: str) -> bytes:
    if path == STDIN:
        data = sys.stdin.buffer.read()
    else:
        with open(path, "rb") as handle:
            data = handle.read()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{_display(path)}: damaged gzip data ({exc})") from None
    return data


def _split(line: str, delimiter: str) -> list[str]:
    return next(csv.reader([line], delimiter=delimiter), [])


def _first_line(text: str) -> tuple[str, int, int] | None:
    """The first non-blank line, its offset and the offset just past it; None for a blank text."""
    position = 0
    while position < len(text):
        end = text.find("\n", position)
        end = len(text) if end < 0 else end + 1
        line = text[position:end].rstrip("\r\n")
        if line.strip():
            return line, position, end
        position = end
    return None


def _read_text(path: str, options: ReadOptions, model_names, delimiter: str) -> Table:
    where = _display(path)
    try:
        text = _read_bytes(path).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{where}: not a UTF-8 text file") from None
    found = _first_line(text)
    if found is None:
        raise DataError(f"{where}: empty file (no rows)")
    first_line, line_start, line_end = found
    cells = [c.strip() for c in _split(first_line, delimiter)]
    numeric = all(NUMBER.match(c) or NON_FINITE.match(c) for c in cells)
    has_header = (not numeric) if options.header is None else options.header
    names = cells if has_header else [f"x{j}" for j in range(len(cells))]
    layout = _layout(path, names, has_header, options, model_names)
    body_start = line_end if has_header else line_start
    body = text[body_start:]
    if has_header and not body.strip():
        raise DataError(f"{where}: has a header but no data rows")
    parsed = _fast_columns(body, delimiter, len(names), layout)
    if parsed is None:
        lines = [line.rstrip("\r") for line in body.split("\n")]
        start_line = text.count("\n", 0, body_start) + 1  # the file's line number of lines[0]
        values = _checked_values(where, lines, start_line, delimiter, layout.index, names)
        ids = None if layout.id_index is None else _text_column(lines, delimiter, layout.id_index)
    else:
        values, ids = parsed
    notes = list(layout.notes)
    if options.header is None and not has_header and _looks_like_a_header(cells, values, layout.index):
        shown = delimiter.join(cells)
        notes.append(f"{where}: the first line ({shown[:60]}) is read as data, not as column names; "
                     "pass --header if it names the columns")
    return Table(values, layout.names, ids, layout.id_name, tuple(notes))


def _looks_like_a_header(cells: list[str], values: np.ndarray, index: list[int]) -> bool:
    """An all-integer first line above columns that are not all integers (e.g. years over measurements)."""
    chosen = [cells[j] for j in index if j < len(cells)]
    if not chosen or not all(INTEGER.match(c) for c in chosen) or values.shape[0] < 2:
        return False
    rest = values[1:]
    return bool(np.any(rest != np.round(rest)))


def _fast_columns(body: str, delimiter: str, n_fields: int, layout: _Layout):
    """``(values, ids)`` by pyarrow's CSV reader; None if pyarrow refuses the text or finds a non-finite value.

    Whatever it refuses is read again line by line, which finds the line
    and column to report (or reads what pyarrow is stricter about, such as
    lines of spaces).
    """
    try:
        import pyarrow as pa
        import pyarrow.csv as pc
    except ImportError:
        return None
    fields = [f"c{j}" for j in range(n_fields)]
    types = {fields[j]: pa.float64() for j in layout.index}
    wanted = [fields[j] for j in layout.index]
    if layout.id_index is not None:
        types[fields[layout.id_index]] = pa.string()
        wanted.append(fields[layout.id_index])
    try:
        table = pc.read_csv(
            io.BytesIO(body.encode("utf-8")),
            read_options=pc.ReadOptions(column_names=fields),
            parse_options=pc.ParseOptions(delimiter=delimiter, quote_char='"'),
            convert_options=pc.ConvertOptions(column_types=types, include_columns=wanted, null_values=[],
                                              strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError):
        return None
    if table.num_rows == 0:
        return None
    values = np.column_stack([table.column(fields[j]).to_numpy() for j in layout.index]).astype(np.float64)
    if not np.all(np.isfinite(values)):
        return None
    ids = None
    if layout.id_index is not None:
        ids = np.asarray([v.strip() for v in table.column(fields[layout.id_index]).to_pylist()], dtype=object)
    return values, ids


def _checked_values(where, lines, first_number, delimiter, index, names) -> np.ndarray:
    """The selected columns read line by line; the first bad cell is reported with its line and column."""
    rows = []
    for number, line in enumerate(lines, start=first_number):
        if not line.strip():
            continue
        try:
            row = _split(line, delimiter)
        except csv.Error as exc:
            raise DataError(f"{where}: malformed CSV at line {number} ({exc})") from None
        if len(row) != len(names):
            raise DataError(
                f"{where}: line {number} has {len(row)} field{'s' * (len(row) != 1)}, expected {len(names)}"
            )
        values = []
        for j in index:
            cell = row[j].strip()
            name = names[j]
            if NON_FINITE.match(cell) and cell.lower() not in MISSING:
                raise DataError(f"{where}: non-finite value {cell!r} in column {name!r} at line {number}")
            if cell.lower() in MISSING:
                raise DataError(f"{where}: missing value in column {name!r} at line {number}")
            if not NUMBER.match(cell):
                raise DataError(f"{where}: non-numeric value {cell[:40]!r} in column {name!r} at line {number}")
            number_value = float(cell)
            if not math.isfinite(number_value):
                raise DataError(f"{where}: value {cell[:40]!r} in column {name!r} at line {number} is too large "
                                "for float64")
            values.append(number_value)
        rows.append(values)
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(index))


def _text_column(lines, delimiter, j) -> np.ndarray:
    out = []
    for line in lines:
        if line.strip():
            row = _split(line, delimiter)
            out.append(row[j].strip() if j < len(row) else "")
    return np.asarray(out, dtype=object)


# -- Parquet and .npy ------------------------------------------------------------------------
def _read_parquet(path: str, options: ReadOptions, model_names) -> Table:
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
    layout = _layout(path, names, True, options, model_names)
    values = np.empty((table.num_rows, len(layout.index)))
    for c, j in enumerate(layout.index):
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
    ids = None
    if layout.id_index is not None:
        ids = np.asarray([str(v) for v in table.column(layout.id_index).to_pylist()], dtype=object)
    return Table(values, layout.names, ids, layout.id_name, layout.notes)


def _read_npy(path: str, options: ReadOptions, model_names) -> Table:
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"{path}: not a numeric .npy array ({str(exc).splitlines()[0][:120]})") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npy file ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(array, np.ndarray):
        raise DataError(f"{path}: not a .npy array")
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise DataError(f"{path}: expected a 1-D or 2-D array, got shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise DataError(f"{path}: expected numbers, got dtype {array.dtype}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise DataError(f"{path}: empty array of shape {array.shape}")
    names = [f"x{j}" for j in range(array.shape[1])]
    layout = _layout(path, names, False, options, None)
    values = array[:, layout.index].astype(np.float64)
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        raise DataError(f"{path}: non-finite value in column {layout.index[bad[0, 1]]} at row {bad[0, 0]}")
    ids = None if layout.id_index is None else np.asarray([repr(v) for v in array[:, layout.id_index].tolist()],
                                                            dtype=object)
    return Table(values, None, ids, layout.id_name, layout.notes)


# -- writing ------------------------------------------------------------------------------
def write_table(path: str | None, columns: dict[str, np.ndarray], inputs: Sequence[str] = ()) -> None:
    """Write equal-length columns to ``path`` (.csv, .tsv, .parquet, .npy) or CSV on stdout.

    A file is written beside ``path`` and renamed at the end; inputs,
    directories, devices and FIFOs are never written over.
    """
    from gaussmix._files import atomic_write

    names = list(columns)
    if path is None or path == STDIN:
        _write_csv(sys.stdout, names, columns, ",")
        return
    suffix = _suffix(path)
    if suffix in (".csv", ".tsv", ".txt"):
        with atomic_write(path, "w", inputs=inputs, encoding="utf-8", newline="") as handle:
            _write_csv(handle, names, columns, "\t" if suffix == ".tsv" else ",")
    elif suffix in (".parquet", ".pq"):
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise DataError(f"{path}: writing Parquet needs pyarrow: pip install 'gaussmix[parquet]'") from None
        with atomic_write(path, "wb", inputs=inputs) as handle:
            pq.write_table(pa.table({n: np.asarray(columns[n]) for n in names}), handle)
    elif suffix == ".npy":
        if any(np.asarray(columns[n]).dtype == object for n in names):
            raise DataError(f"{path}: .npy output holds numbers only; the id column is text: use .csv or .parquet")
        with atomic_write(path, "wb", inputs=inputs) as handle:
            np.save(handle, np.column_stack([np.asarray(columns[n], dtype=np.float64) for n in names]))
    else:
        raise DataError(f"{path}: unsupported output type {suffix or '(none)'!r}; use .csv, .tsv, .parquet or .npy")


def _write_csv(handle, names, columns, delimiter) -> None:
    writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
    writer.writerow(names)
    data = [np.asarray(columns[n]) for n in names]
    for row in zip(*data):
        writer.writerow([repr(float(v)) if isinstance(v, (float, np.floating)) else str(v) for v in row])
