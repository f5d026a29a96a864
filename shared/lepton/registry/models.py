"""The registry's records: projects, model versions, aliases and their history, runs, audit entries.

These are pure pydantic models; the DynamoDB adapter (lepton.registry.dynamo) stores them and the
API returns them. Field constraints here are the single source of truth for what valid input is.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from lepton.data.models import DataContract, ProjectId
from lepton.training import TuningConfig

__all__ = [
    "ALLOWED_TRANSITIONS",
    "RESERVED_ALIASES",
    "Alias",
    "AliasHistoryEntry",
    "AliasName",
    "AuditEntry",
    "BranchName",
    "FailureCause",
    "HyperValue",
    "Member",
    "Membership",
    "ModelVersion",
    "ModelVersionCore",
    "Project",
    "ProjectId",
    "PromotionPolicy",
    "Role",
    "Run",
    "RunOverrides",
    "RunStatus",
    "TrainingConfig",
    "VersionStatus",
    "VersionSummary",
    "can_transition",
    "normalise_principal",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------- scalars


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


FiniteFloat = Annotated[float, AfterValidator(_finite)]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
S3Uri = Annotated[str, StringConstraints(pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/\S+$", max_length=1024)]
DatasetId = Annotated[str, StringConstraints(pattern=r"^ds-[0-9a-f]{20}$")]
RUN_ID_PATTERN = r"^run-[0-9a-z]{8,40}$"
RunId = Annotated[str, StringConstraints(pattern=RUN_ID_PATTERN)]
ExecutionArn = Annotated[str, StringConstraints(min_length=1, max_length=2048)]  # a Step Functions execution
# SageMaker's job-name rule
JobName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")]
CodeVersion = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$")]
BranchName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")]
AliasName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
ParamName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")]
MetricName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_:./-]{0,127}$")]
TagKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:/-]{1,64}$")]
TagValue = Annotated[str, StringConstraints(max_length=256)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=1000)]
Description = Annotated[str, StringConstraints(max_length=2000)]
HyperValue = bool | int | FiniteFloat | Annotated[str, StringConstraints(max_length=256)]
VersionNumber = Annotated[int, Field(ge=1, le=9_999_999_999)]

_PRINCIPAL = r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:[A-Za-z0-9+=,.@_/:-]{1,512}$"
Principal = Annotated[str, StringConstraints(pattern=_PRINCIPAL)]
_ASSUMED_ROLE = re.compile(r"^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role/([^/]+)/.+$")


def normalise_principal(arn: str) -> str:
    """An STS assumed-role session ARN maps to the IAM role it assumed, so that members can be
    declared as roles: arn:aws:sts::1:assumed-role/Trainer/sess -> arn:aws:iam::1:role/Trainer."""
    m = _ASSUMED_ROLE.match(arn)
    if m:
        return f"arn:{m.group(1)}:iam::{m.group(2)}:role/{m.group(3)}"
    return arn


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def fresh(cls: type[Record]) -> Any:
    """A field whose default is a new `cls()` per instance, shown in the JSON schema as a plain
    default would be. A model instance given as a plain default is deep-copied for every instance
    that uses it (pydantic copies an unhashable default): 40 us per NewProject here."""
    return Field(default_factory=cls, json_schema_extra={"default": cls().model_dump(mode="json")})


# ------------------------------------------------------------------------------------ roles/project


class Role(StrEnum):
    VIEWER = "viewer"
    TRAINER = "trainer"
    APPROVER = "approver"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _ROLE_RANK[self]

    def allows(self, required: Role) -> bool:
        return self.rank >= required.rank


_ROLE_RANK = {Role.VIEWER: 0, Role.TRAINER: 1, Role.APPROVER: 2, Role.ADMIN: 3}


class Member(Record):
    principal: Principal
    role: Role


class Membership(Record):
    """A principal's membership of one project (the "my projects" index)."""

    principal: str
    project: ProjectId
    role: Role


class PromotionPolicy(Record):
    """How the lifecycle decides whether a candidate may replace the champion, and who may approve."""

    primary_metric: MetricName | None = Field(default=None, description="metric compared champion vs challenger")
    direction: Literal["maximize", "minimize"] = "maximize"
    min_improvement: FiniteFloat = Field(default=0.0, ge=0, description="absolute improvement required")
    minimums: dict[MetricName, FiniteFloat] = Field(default_factory=dict, max_length=50)
    maximums: dict[MetricName, FiniteFloat] = Field(default_factory=dict, max_length=50)
    require_approval: bool = Field(default=True, description="a person approves before deployment")
    separate_approver: bool = Field(
        default=False, description="four eyes: whoever registered a version may not approve it"
    )


class TrainingConfig(Record):
    """Defaults of a project's training runs (a run's overrides are applied on top)."""

    hyperparameters: dict[ParamName, HyperValue] = Field(default_factory=dict, max_length=100)
    instance_type: Annotated[str, StringConstraints(pattern=r"^(ml|local)\.[a-z0-9.]+$")] | None = None
    instance_count: int = Field(default=1, ge=1, le=64)
    max_runtime_s: int = Field(default=3600, ge=60, le=432_000)
    tuning: TuningConfig | None = Field(default=None, description="tune instead of a single training job")


class Project(Record):
    name: ProjectId
    description: Description = ""
    contract: DataContract | None = None
    training: TrainingConfig = fresh(TrainingConfig)
    policy: PromotionPolicy = fresh(PromotionPolicy)
    members: dict[str, Role] = Field(description="principal ARN -> role")
    created_at: datetime
    created_by: str
    version_count: int = Field(default=0, ge=0, description="versions registered; the next gets count + 1")
    dataset_count: int = Field(default=0, ge=0)
    latest_dataset_id: str | None = None
    audit_seq: int = Field(default=0, ge=0, description="sequence number of the last audit entry")
    audit_head: str = Field(default="0" * 64, description="hash of the last audit entry")

    def role_of(self, principal: str) -> Role | None:
        role = self.members.get(principal)
        if role is None:
            role = self.members.get(normalise_principal(principal))
        return role

    @property
    def admins(self) -> list[str]:
        return sorted(p for p, r in self.members.items() if r is Role.ADMIN)


# ---------------------------------------------------------------------------------------- versions


class VersionStatus(StrEnum):
    REGISTERED = "REGISTERED"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    DEPLOYING = "DEPLOYING"
    PRODUCTION = "PRODUCTION"
    ROLLED_BACK = "ROLLED_BACK"
    SUPERSEDED = "SUPERSEDED"
    ARCHIVED = "ARCHIVED"
    FAILED = "FAILED"


S = VersionStatus
ALLOWED_TRANSITIONS: dict[VersionStatus, frozenset[VersionStatus]] = {
    S.REGISTERED: frozenset({S.APPROVED, S.REJECTED, S.FAILED}),
    S.APPROVED: frozenset({S.DEPLOYING, S.FAILED}),
    S.REJECTED: frozenset({S.ARCHIVED}),
    S.DEPLOYING: frozenset({S.PRODUCTION, S.FAILED}),
    S.PRODUCTION: frozenset({S.ROLLED_BACK, S.SUPERSEDED}),
    # re-promotion of a version that served before: revert and rollback (history is appended to)
    S.SUPERSEDED: frozenset({S.PRODUCTION, S.ARCHIVED}),
    S.ROLLED_BACK: frozenset({S.ARCHIVED}),
    S.FAILED: frozenset({S.ARCHIVED}),
    S.ARCHIVED: frozenset(),
}
del S


def can_transition(current: VersionStatus, target: VersionStatus) -> bool:
    return target in ALLOWED_TRANSITIONS[current]


class FailureCause(Record):
    """Why a run or version failed: Step Functions' Catch output ({"Error", "Cause"})."""

    error: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    cause: Annotated[str, StringConstraints(max_length=32_000)] = ""
    step: Annotated[str, StringConstraints(max_length=128)] | None = None


class ModelVersionCore(Record):
    """What was trained on which data with which code: immutable once registered."""

    artifact_uri: S3Uri
    artifact_sha256: Sha256
    dataset_id: DatasetId
    training_job: JobName
    code_version: CodeVersion
    hyperparameters: dict[ParamName, HyperValue] = Field(default_factory=dict, max_length=100)
    metrics: dict[MetricName, FiniteFloat] = Field(default_factory=dict, max_length=100)
    parent_version: VersionNumber | None = None
    branch: BranchName = "main"

    def digest(self) -> str:
        """sha256 of the canonical JSON of the core: recorded at registration, checked on read."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()


class ModelVersion(ModelVersionCore):
    project: ProjectId
    number: VersionNumber
    status: VersionStatus = VersionStatus.REGISTERED
    tags: dict[TagKey, TagValue] = Field(default_factory=dict, max_length=50)
    description: Description = ""
    ancestry: list[int] = Field(default_factory=list, description="parent, grandparent, ... nearest first")
    run_id: str | None = None
    created_at: datetime
    created_by: str
    registered_by: str = Field(description="principal that registered the version (four-eyes approval check)")
    status_changed_at: datetime
    status_reason: str = ""
    failure: FailureCause | None = None
    core_digest: Sha256

    @property
    def core(self) -> ModelVersionCore:
        return ModelVersionCore.model_validate(self.model_dump(include=set(ModelVersionCore.model_fields)))

    def summary(self) -> VersionSummary:
        return VersionSummary(
            number=self.number,
            status=self.status,
            artifact_uri=self.artifact_uri,
            artifact_sha256=self.artifact_sha256,
            dataset_id=self.dataset_id,
            training_job=self.training_job,
            code_version=self.code_version,
            branch=self.branch,
            metrics=self.metrics,
        )


class VersionSummary(Record):
    """What an alias answer carries about its version (denormalised: get by alias is one read)."""

    number: int
    status: VersionStatus
    artifact_uri: str
    artifact_sha256: str
    dataset_id: str
    training_job: str
    code_version: str
    branch: str
    metrics: dict[str, float]


# ----------------------------------------------------------------------------------------- aliases

RESERVED_ALIASES = frozenset({"production", "previous"})


class Alias(Record):
    project: ProjectId
    name: AliasName
    version: int
    target: VersionSummary
    updated_at: datetime
    updated_by: str
    reason: str = ""
    audit_seq: int


class AliasHistoryEntry(Record):
    """One move of an alias. `version` None means the alias was removed."""

    project: ProjectId
    alias: AliasName
    version: int | None
    previous_version: int | None
    at: datetime
    actor: str
    reason: str = ""
    action: Literal["promote", "revert", "rollback", "set", "delete"]
    audit_seq: int


# -------------------------------------------------------------------------------------------- runs


class RunStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"  # its execution was stopped (POST .../stop, or StopExecution in the console)


class RunOverrides(Record):
    hyperparameters: dict[ParamName, HyperValue] = Field(default_factory=dict, max_length=100)
    dataset_id: DatasetId | None = None
    code_version: CodeVersion | None = None


class Run(Record):
    """A training run: from a base version (a branch) or from scratch, with overrides."""

    project: ProjectId
    run_id: RunId
    branch: BranchName
    base_version: int | None
    overrides: RunOverrides
    hyperparameters: dict[str, HyperValue] = Field(description="the run's effective hyperparameters")
    dataset_id: str | None
    code_version: str | None
    status: RunStatus = RunStatus.PENDING
    execution_arn: str | None = Field(
        default=None, description="the lifecycle execution running the run (recorded when it becomes RUNNING)"
    )
    started_at: datetime | None = Field(default=None, description="when its execution began to run it")
    version: int | None = Field(default=None, description="the version this run registered")
    failure: FailureCause | None = Field(default=None, description="why it ended FAILED or STOPPED")
    created_at: datetime
    created_by: str
    updated_at: datetime


# ------------------------------------------------------------------------------------------- audit


class AuditEntry(Record):
    """One entry of a project's hash-chained, append-only audit log."""

    project: ProjectId
    seq: int = Field(ge=1)
    at: datetime
    actor: str
    action: str
    target: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    reason: str = ""
    prev_hash: str
    hash: str

    @model_validator(mode="after")
    def _utc(self) -> AuditEntry:
        if self.at.tzinfo is None:
            raise ValueError("audit timestamps are timezone-aware")
        return self
