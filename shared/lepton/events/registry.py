"""Events the model registry publishes (source `lepton.lifecycle`), one model per detail-type.

Each is published after the change it reports has been committed. `audit_seq` and `audit_hash`
identify the audit entry written in the same transaction: a consumer can fetch it, and the hashes
seen on the bus are an outside witness of the audit chain.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from lepton.events.base import LeptonEvent


class RegistryEvent(LeptonEvent):
    audit_seq: int = Field(ge=1)
    audit_hash: str = Field(pattern=r"^[0-9a-f]{64}$")


class ProjectCreated(RegistryEvent):
    detail_type: ClassVar[str] = "ProjectCreated"
    description: str = ""
    has_contract: bool


class ProjectUpdated(RegistryEvent):
    detail_type: ClassVar[str] = "ProjectUpdated"
    fields: list[str] = Field(description="the project settings that changed (contract, training, policy, ...)")


class ProjectMemberChanged(RegistryEvent):
    detail_type: ClassVar[str] = "ProjectMemberChanged"
    principal: str
    role: str | None = Field(description="the new role; None when the member was removed")
    previous_role: str | None


class ModelVersionRegistered(RegistryEvent):
    detail_type: ClassVar[str] = "ModelVersionRegistered"
    version: int
    branch: str
    parent_version: int | None
    dataset_id: str
    training_job: str
    code_version: str
    artifact_uri: str
    artifact_sha256: str
    metrics: dict[str, float]
    run_id: str | None = None


class ModelVersionStatusChanged(RegistryEvent):
    detail_type: ClassVar[str] = "ModelVersionStatusChanged"
    version: int
    from_status: str
    to_status: str
    reason: str = ""
    error: str | None = Field(default=None, description="the failure's error name when to_status is FAILED")


class ModelVersionUpdated(RegistryEvent):
    detail_type: ClassVar[str] = "ModelVersionUpdated"
    version: int
    fields: list[str] = Field(description="tags and/or description")


class AliasMoved(RegistryEvent):
    detail_type: ClassVar[str] = "AliasMoved"
    alias: str
    version: int | None = Field(description="the version the alias points at now; None when removed")
    previous_version: int | None
    action: str = Field(description="promote, revert, rollback, set or delete")
    reason: str = ""


class RunCreated(RegistryEvent):
    detail_type: ClassVar[str] = "RunCreated"
    run_id: str
    branch: str
    base_version: int | None
    hyperparameters: dict[str, bool | int | float | str]
    dataset_id: str | None


class RunStarted(RegistryEvent):
    detail_type: ClassVar[str] = "RunStarted"
    run_id: str
    execution_arn: str = Field(description="the lifecycle execution that runs it")


class RunFailed(RegistryEvent):
    detail_type: ClassVar[str] = "RunFailed"
    run_id: str
    error: str
    cause: str = ""
    version: int | None = None


class RunStopped(RegistryEvent):
    detail_type: ClassVar[str] = "RunStopped"
    run_id: str
    execution_arn: str | None = Field(description="the lifecycle execution that was stopped")
    error: str = Field(description="RunStopped (POST .../stop) or ExecutionAborted (a stop elsewhere)")
    cause: str = Field(default="", description="the reason given to POST .../stop, or the execution's end")


REGISTRY_EVENTS: tuple[type[RegistryEvent], ...] = (
    ProjectCreated,
    ProjectUpdated,
    ProjectMemberChanged,
    ModelVersionRegistered,
    ModelVersionStatusChanged,
    ModelVersionUpdated,
    AliasMoved,
    RunCreated,
    RunStarted,
    RunFailed,
    RunStopped,
)
