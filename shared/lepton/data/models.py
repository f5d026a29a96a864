"""The data contract and the dataset records the ingest function writes to the registry.

These are the shapes both sides agree on (docs/contracts.md section 3): the ingest function builds
them, the registry stores them, the API returns them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

PROJECT_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$"
ProjectId = Annotated[str, Field(pattern=PROJECT_ID_PATTERN)]
DatasetId = Annotated[str, Field(pattern=r"^ds-[0-9a-f]{20}$")]

MAX_LISTED_ROWS = 20
"""A problem lists at most this many row numbers; `row_count` gives the total."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class Task(StrEnum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"


class ColumnKind(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


class NullPolicy(StrEnum):
    """What cleaning does with an empty cell."""

    REJECT = "reject"  # the file is refused, naming rows and columns
    DROP_ROW = "drop_row"  # the row is dropped and counted
    IMPUTE = "impute"  # median for numeric columns, most frequent value for categorical ones


class FormulaPolicy(StrEnum):
    """What happens to a cell a spreadsheet would execute (starts with =, +, - or @)."""

    REJECT = "reject"
    NEUTRALISE = "neutralise"  # prefixed with a single quote, counted and reported as a warning


class ContractSource(StrEnum):
    DECLARED = "declared"
    INFERRED = "inferred"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ColumnSpec(Frozen):
    name: str = Field(min_length=1, max_length=128)
    kind: ColumnKind
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    categories: list[str] | None = Field(default=None, description="allowed values of a categorical column")

    @model_validator(mode="after")
    def _range(self) -> ColumnSpec:
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"column {self.name!r}: minimum {self.minimum} exceeds maximum {self.maximum}")
        if self.kind is ColumnKind.CATEGORICAL and (self.minimum is not None or self.maximum is not None):
            raise ValueError(f"column {self.name!r}: a categorical column takes categories, not a range")
        return self


class SplitFractions(Frozen):
    train: float = Field(default=0.70, gt=0, lt=1)
    validation: float = Field(default=0.15, ge=0, lt=1)
    test: float = Field(default=0.15, gt=0, lt=1)

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitFractions:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"split fractions must sum to 1, got {total}")
        return self


class DataContract(Frozen):
    """A project's data contract: what an upload must look like to become a dataset version."""

    columns: list[ColumnSpec] = Field(min_length=2)
    target: str
    task: Task
    null_policy: NullPolicy = NullPolicy.REJECT
    formula_policy: FormulaPolicy = FormulaPolicy.REJECT
    min_rows: int = Field(default=20, ge=1)
    max_bytes: int = Field(default=2 * 1024**3, ge=1, description="uploads larger than this are refused up front")
    split: SplitFractions = SplitFractions()
    source: ContractSource = ContractSource.DECLARED

    @model_validator(mode="after")
    def _target_is_a_column(self) -> DataContract:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError("column names must be unique")
        if self.target not in names:
            raise ValueError(f"target {self.target!r} is not one of the columns")
        return self

    @property
    def features(self) -> list[ColumnSpec]:
        return [c for c in self.columns if c.name != self.target]


class SourceObject(Frozen):
    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size: int = Field(ge=0)


class Problem(Frozen):
    """One reason an upload was refused, precise enough for a person to fix the file."""

    code: str = Field(description="stable machine-readable code, e.g. 'missing_columns', 'wrong_type'")
    message: str
    column: str | None = None
    rows: list[int] = Field(
        default_factory=list,
        description="1-based data row numbers (header excluded), ascending; at most the first "
        f"{MAX_LISTED_ROWS} when more rows are affected",
    )
    row_count: int | None = Field(
        default=None, ge=0, description="how many rows are affected in total (None when the problem is not about rows)"
    )


class DatasetStatus(StrEnum):
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"


class SplitRows(Frozen):
    train: int = Field(ge=0)
    validation: int = Field(ge=0)
    test: int = Field(ge=0)


class DatasetVersion(Frozen):
    """An accepted upload: cleaned, split, profiled and stored under curated/."""

    project: ProjectId
    dataset_id: DatasetId
    number: int = Field(default=0, ge=0, description="dense per-project number, assigned by the registry")
    status: DatasetStatus = DatasetStatus.ACCEPTED
    content_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    schema_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    rows: SplitRows
    rows_in: int = Field(ge=0, description="data rows in the uploaded file")
    rows_dropped: dict[str, int] = Field(default_factory=dict, description="reason -> rows dropped by cleaning")
    source: SourceObject
    curated_prefix: str = Field(description="s3://bucket/curated/<project>/<dataset_id>/")
    contract_source: ContractSource
    task: Task | None = Field(default=None, description="the contract's task when the dataset was accepted")
    target: str | None = Field(default=None, description="the contract's target column when the dataset was accepted")
    warnings: list[Problem] = Field(default_factory=list)
    parent_dataset_id: str | None = Field(default=None, description="the project's previous accepted dataset")
    created_at: datetime = Field(default_factory=utcnow)


class DatasetRejection(Frozen):
    """A refused upload: the file sits in quarantine/ with a JSON report beside it."""

    project: str
    rejection_id: str = Field(description="stable for the same source object (bucket, key, version/etag)")
    source: SourceObject
    problems: list[Problem] = Field(min_length=1)
    quarantine_key: str
    report_key: str
    created_at: datetime = Field(default_factory=utcnow)


def dataset_id_for(content_sha256: str) -> str:
    """The dataset id of a content sha256 (docs/contracts.md section 1)."""
    return f"ds-{content_sha256[:20]}"


def execution_name_for(project: str, dataset_id: str) -> str:
    """The lifecycle execution started for a dataset: one name per (project, dataset), so Step Functions
    refuses a second start (ExecutionAlreadyExists) and a dataset is trained once from ingestion."""
    return f"{project}-{dataset_id}"


class LifecycleInput(Frozen):
    """The input of the lifecycle state machine's execution that the ingest function starts.

    The state machine reads these fields (`$.project`, `$.dataset_id`, ...); keep them stable."""

    project: ProjectId
    dataset_id: DatasetId
    dataset_number: int = Field(ge=0, description="the dataset's dense per-project number in the registry")
    curated_prefix: str = Field(
        pattern=r"^s3://[^/]+/curated/.+/$", description="s3://bucket/curated/<project>/<dataset_id>/"
    )
    stats_uri: str = Field(pattern=r"^s3://[^/]+/curated/.+/stats\.json$")
    task: Task
    target: str = Field(min_length=1)
