"""Reading the curated dataset layout (docs/contracts.md section 1): parquet parts and stats.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lepton_ml.errors import JobFailure


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


class NumericFeature(_Lenient):
    name: str
    kind: Literal["numeric"]
    mean: float | None
    std: Annotated[float, Field(ge=0)] | None


class CategoricalFeature(_Lenient):
    name: str
    kind: Literal["categorical"]
    categories: dict[str, float]


class CategoricalTarget(_Lenient):
    kind: Literal["categorical"]
    classes: list[Any]


class NumericTarget(_Lenient):
    kind: Literal["numeric"]
    mean: float
    std: Annotated[float, Field(ge=0)]


class DatasetStats(_Lenient):
    """The fields of stats.json (schema_version 1) that the jobs use."""

    schema_version: Literal[1]
    dataset_id: str | None = None
    project: str | None = None
    task: Literal["classification", "regression"]
    target: str
    features: list[Annotated[NumericFeature | CategoricalFeature, Field(discriminator="kind")]]
    target_stats: Annotated[CategoricalTarget | NumericTarget, Field(discriminator="kind")]

    @model_validator(mode="after")
    def _consistent(self) -> DatasetStats:
        if not self.features:
            raise ValueError("features: at least one feature is required")
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ValueError("features: feature names must be unique")
        if self.target in names:
            raise ValueError(f"target: '{self.target}' is also listed as a feature")
        expected = "categorical" if self.task == "classification" else "numeric"
        if self.target_stats.kind != expected:
            raise ValueError(f"target_stats.kind: a {self.task} task needs '{expected}' target stats")
        if isinstance(self.target_stats, CategoricalTarget) and len(self.target_stats.classes) < 2:
            raise ValueError("target_stats.classes: classification needs at least two classes")
        return self


def find_stats_file(channel_dir: Path) -> Path:
    """stats.json in the channel, or the only .json file there (an S3 object keeps its own name)."""
    candidate = channel_dir / "stats.json"
    if candidate.is_file():
        return candidate
    found = sorted(channel_dir.rglob("*.json"))
    if len(found) == 1:
        return found[0]
    raise JobFailure(f"The stats channel ({channel_dir}) must hold stats.json; found {[p.name for p in found]}.")


def load_stats(channel_dir: Path) -> DatasetStats:
    path = find_stats_file(channel_dir)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise JobFailure(f"{path.name} is not valid JSON: {exc}") from exc
    try:
        return DatasetStats.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'stats'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise JobFailure(f"{path.name} does not follow the stats.json contract (schema 1): {problems}") from None


def parquet_parts(split_dir: Path) -> list[Path]:
    """The parquet parts of one split, in name order (relative path, so nested folders sort too)."""
    return sorted(split_dir.rglob("*.parquet"), key=lambda p: p.relative_to(split_dir).as_posix())


def read_split(split_dir: Path, split: str, required: list[str], target: str) -> pd.DataFrame:
    """All parts of a split as one frame, checked to hold every ``required`` column (features, then target)."""
    parts = parquet_parts(split_dir)
    if not parts:
        raise JobFailure(f"The {split} data ({split_dir}) holds no .parquet files.")
    try:
        tables = [pq.read_table(p) for p in parts]
        table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    except (pa.ArrowException, OSError) as exc:
        raise JobFailure(f"The {split} data could not be read as parquet: {exc}") from exc
    missing = [name for name in required if name not in table.column_names]
    if missing:
        raise JobFailure(
            f"The {split} data lacks the column(s) {missing}: the model needs the features "
            f"{required[:-1]} and the target '{target}'."
        )
    frame = table.select(required).to_pandas()
    if frame.empty:
        raise JobFailure(f"The {split} data has no rows.")
    return frame
