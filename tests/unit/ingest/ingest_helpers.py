"""Building CSV uploads and reading back what the pipeline produced."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from dataprep.pipeline import Prepared, Refused, prepare

from lepton.data.models import ColumnKind, ColumnSpec, DataContract, Problem, Task

ROOT = Path(__file__).resolve().parents[3]
WINE = ROOT / "data" / "wine.csv"
DIABETES = ROOT / "data" / "diabetes.csv"


def wine_bytes() -> bytes:
    return WINE.read_bytes()


def wine_lines() -> tuple[str, list[str]]:
    header, *rows = WINE.read_text().splitlines()
    return header, rows


def csv_of(header: str, rows: list[str], newline: str = "\n") -> bytes:
    return (newline.join([header, *rows]) + newline).encode()


def run(data: bytes | str, contract: DataContract | None = None, project: str = "wine") -> Prepared | Refused:
    payload = data.encode() if isinstance(data, str) else data
    return prepare(lambda: io.BytesIO(payload), contract, project=project)


def accepted(data: bytes | str, contract: DataContract | None = None) -> Prepared:
    result = run(data, contract)
    assert isinstance(result, Prepared), getattr(result, "problems", result)
    return result


def refused(data: bytes | str, contract: DataContract | None = None) -> Refused:
    result = run(data, contract)
    assert isinstance(result, Refused), f"expected a refusal, got {result}"
    return result


def problem(result: Refused, code: str, column: str | None = None) -> Problem:
    found = [p for p in result.problems if p.code == code and (column is None or p.column == column)]
    assert found, f"no {code!r} problem (column {column!r}) in {[(p.code, p.column) for p in result.problems]}"
    return found[0]


def split_table(prepared: Prepared, split: str) -> pa.Table:
    obj = next(o for o in prepared.objects if o.relative_key == f"{split}/part-00000.parquet")
    return pq.read_table(pa.BufferReader(obj.body))


def small_contract(**overrides: Any) -> DataContract:
    """x (numeric), colour (categorical), y (numeric target) classification."""
    columns = overrides.pop(
        "columns",
        [
            ColumnSpec(name="x", kind=ColumnKind.NUMERIC),
            ColumnSpec(name="colour", kind=ColumnKind.CATEGORICAL),
            ColumnSpec(name="y", kind=ColumnKind.NUMERIC),
        ],
    )
    values: dict[str, Any] = {"columns": columns, "target": "y", "task": Task.CLASSIFICATION, "min_rows": 5}
    values.update(overrides)
    return DataContract(**values)


def small_rows(n: int = 40) -> list[str]:
    colours = ["red", "white", "rose"]
    return [f"{i * 0.5 - 3},{colours[i % 3]},{i % 2}" for i in range(n)]


SMALL_HEADER = "x,colour,y"
