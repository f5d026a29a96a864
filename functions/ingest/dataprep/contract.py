"""Data contracts: inferring one from a project's first upload, and checking a header against one.

Inference rules (docs/ingest.md, "Contract inference"):
- a column is numeric when every non-empty cell is a number (NaN literals count as empty),
  categorical otherwise;
- it is nullable when the upload has an empty cell in it (never for the target);
- the target is the first column named `target`, `label` or `y` (any case, in that order of
  preference), otherwise the last column;
- the task is classification when the target is categorical, or numeric with whole-number values
  only and at most MAX_INFERRED_CLASSES distinct values; regression otherwise;
- ranges and category lists are not inferred (a first upload shows what occurred, not what is
  allowed); null and formula policies, minimum rows and split fractions take their defaults.
"""

from __future__ import annotations

import hashlib
import json

import pyarrow as pa
import pyarrow.compute as pc

from dataprep.problems import ProblemLog
from dataprep.reading import NUMBER_PATTERN
from lepton.data.models import ColumnKind, ColumnSpec, ContractSource, DataContract, Task

TARGET_NAMES = ("target", "label", "y")
MAX_INFERRED_CLASSES = 20


def pick_target(names: list[str]) -> str:
    lowered = {name.lower(): name for name in reversed(names)}
    for candidate in TARGET_NAMES:
        if candidate in lowered:
            return lowered[candidate]
    return names[-1]


def looks_numeric(text: pa.Array) -> bool:
    """Every non-empty cell is a number (and there is at least one)."""
    valid = text.drop_null()
    if len(valid) == 0:
        return False
    return bool(pc.all(pc.match_substring_regex(valid, NUMBER_PATTERN, ignore_case=True)).as_py())


def infer_kinds(names: list[str], texts: list[pa.Array]) -> dict[str, ColumnKind]:
    return {
        name: ColumnKind.NUMERIC if looks_numeric(text) else ColumnKind.CATEGORICAL
        for name, text in zip(names, texts, strict=True)
    }


def infer_task(target: pa.Array, kind: ColumnKind) -> Task:
    if kind is ColumnKind.CATEGORICAL:
        return Task.CLASSIFICATION
    values = pc.drop_null(target)
    values = pc.filter(values, pc.is_finite(values))
    if len(values) == 0:
        return Task.REGRESSION
    whole = pc.all(pc.equal(pc.floor(values), values)).as_py()
    if not whole:
        return Task.REGRESSION
    return Task.CLASSIFICATION if len(pc.unique(values)) <= MAX_INFERRED_CLASSES else Task.REGRESSION


def infer_contract(names: list[str], kinds: dict[str, ColumnKind], columns: dict[str, pa.Array]) -> DataContract:
    """A contract for a project's first upload, from its columns converted to `kinds` (numbers as
    float64, where NaN counts as an empty cell)."""
    target = pick_target(names)
    specs: list[ColumnSpec] = []
    for name in names:
        column = columns[name]
        empty = column.null_count
        if kinds[name] is ColumnKind.NUMERIC:
            empty += int(pc.sum(pc.is_nan(column)).as_py() or 0)
        specs.append(ColumnSpec(name=name, kind=kinds[name], nullable=bool(empty) and name != target))
    task = infer_task(columns[target], kinds[target])
    return DataContract(columns=specs, target=target, task=task, source=ContractSource.INFERRED)


TEXT_READ_TYPE = pa.dictionary(pa.int32(), pa.string())
"""Categorical columns are read dictionary-encoded: checks, hashing, splitting and the parquet writer
then work on each column's distinct values and small integer indices instead of every string."""


def kinds_types(names: list[str], kinds: dict[str, ColumnKind]) -> list[pa.DataType]:
    """The types the CSV reader converts each column to: float64 for numbers, dictionary-encoded text."""
    return [pa.float64() if kinds[n] is ColumnKind.NUMERIC else TEXT_READ_TYPE for n in names]


def check_header(names: list[str], contract: DataContract, log: ProblemLog) -> bool:
    """Schema drift: every contract column must be present and no other; order does not matter."""
    expected = [c.name for c in contract.columns]
    missing = [n for n in expected if n not in names]
    unexpected = [n for n in names if n not in expected]
    for name in missing:
        log.add("missing_column", f"the contract requires column {name!r}, which the file lacks", column=name)
    for name in unexpected:
        log.add(
            "unexpected_column",
            f"the file has column {name!r}, which the contract does not know (contract columns: {', '.join(expected)})",
            column=name,
        )
    return not (missing or unexpected)


def output_order(contract: DataContract) -> list[ColumnSpec]:
    """Column order of the curated parquet parts and of the row hash: features in contract order, then
    the target."""
    target = next(c for c in contract.columns if c.name == contract.target)
    return [*contract.features, target]


def target_type(contract: DataContract) -> pa.DataType:
    """The target's parquet type: float64 for regression; for classification int64 when numeric
    (whole numbers only) and string when categorical."""
    spec = next(c for c in contract.columns if c.name == contract.target)
    if contract.task is Task.REGRESSION:
        return pa.float64()
    return pa.int64() if spec.kind is ColumnKind.NUMERIC else pa.string()


def output_schema(contract: DataContract) -> pa.Schema:
    fields = []
    for spec in output_order(contract):
        if spec.name == contract.target:
            fields.append(pa.field(spec.name, target_type(contract), nullable=False))
        elif spec.kind is ColumnKind.NUMERIC:
            fields.append(pa.field(spec.name, pa.float64(), nullable=spec.nullable))
        else:
            fields.append(pa.field(spec.name, pa.string(), nullable=spec.nullable))
    return pa.schema(fields)


def stored_schema(contract: DataContract) -> pa.Schema:
    """output_schema as the parts are built in memory: text dictionary-encoded. Parquet stores it as
    UTF-8 strings either way; the parts are written without an Arrow schema, so readers get `string`."""
    return pa.schema(
        [f.with_type(TEXT_READ_TYPE) if pa.types.is_string(f.type) else f for f in output_schema(contract)]
    )


def schema_hash(contract: DataContract) -> str:
    """sha256 of the canonical JSON of the curated schema: columns (name, kind, parquet type) in output
    order, the target and the task."""
    schema = output_schema(contract)
    kinds = {c.name: c.kind.value for c in contract.columns}
    doc = {
        "columns": [[f.name, kinds[f.name], str(f.type)] for f in schema],
        "target": contract.target,
        "task": contract.task.value,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def contract_kinds(contract: DataContract) -> dict[str, ColumnKind]:
    return {c.name: c.kind for c in contract.columns}
