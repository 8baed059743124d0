"""Tables of records (a selector's results): a pandas DataFrame when pandas is installed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def pandas_available() -> bool:
    from importlib.util import find_spec

    return find_spec("pandas") is not None


def as_table(records: list[dict[str, Any]], columns: Sequence[str]) -> Any:
    """A DataFrame of ``records`` with ``columns`` when pandas is installed, else the records."""
    if pandas_available():
        import pandas as pd

        return pd.DataFrame.from_records(records, columns=list(columns))
    return records


def as_records(table: Any) -> list[dict[str, Any]]:
    """The rows of a table made by :func:`as_table` as dicts (None, not NaN, where a value is missing)."""
    if hasattr(table, "to_dict"):
        return [{k: (None if k == "error" and not isinstance(v, str) else v) for k, v in row.items()}
                for row in table.to_dict("records")]
    return list(table)
