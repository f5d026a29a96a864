"""Events the ingest function publishes: an upload became a dataset version, or it was refused."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from lepton.data.models import DatasetId, Problem, SplitRows, Task
from lepton.events.base import LeptonEvent

MAX_EVENT_PROBLEMS = 20
"""A DatasetRejected event carries at most this many problems (EventBridge entries are limited to
256 KB); `problem_count` gives the total and the report in S3 holds them all."""


class DatasetAccepted(LeptonEvent):
    detail_type: ClassVar[str] = "DatasetAccepted"

    dataset_id: DatasetId
    dataset_number: int = Field(ge=0)
    content_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    schema_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    task: Task
    target: str
    rows: SplitRows
    rows_in: int = Field(ge=0, description="data rows in the uploaded file")
    rows_dropped: dict[str, int] = Field(default_factory=dict)
    curated_prefix: str
    stats_uri: str
    source_bucket: str
    source_key: str
    source_version: str | None = Field(default=None, description="the object's version id, or its etag")
    execution_name: str = Field(description="the lifecycle execution started (or already running) for the dataset")
    warnings: list[Problem] = Field(default_factory=list)


class DatasetRejected(LeptonEvent):
    detail_type: ClassVar[str] = "DatasetRejected"

    rejection_id: str
    source_bucket: str
    source_key: str
    source_version: str | None = None
    quarantine_key: str
    report_key: str
    problem_codes: list[str] = Field(description="the distinct problem codes, sorted")
    problem_count: int = Field(ge=1)
    problems: list[Problem] = Field(min_length=1, max_length=MAX_EVENT_PROBLEMS)
