"""Inputs of the registry's operations (the API uses them as request bodies)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lepton.data.models import DataContract, ProjectId
from lepton.registry.models import (
    BranchName,
    CodeVersion,
    DatasetId,
    Description,
    FiniteFloat,
    HyperValue,
    JobName,
    MetricName,
    ParamName,
    PromotionPolicy,
    RunId,
    RunOverrides,
    S3Uri,
    Sha256,
    TagKey,
    TagValue,
    TrainingConfig,
    VersionNumber,
    fresh,
)


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NewProject(Command):
    name: ProjectId
    description: Description = ""
    contract: DataContract | None = None
    training: TrainingConfig = fresh(TrainingConfig)
    policy: PromotionPolicy = fresh(PromotionPolicy)


class ProjectPatch(Command):
    description: Description | None = None
    contract: DataContract | None = None
    training: TrainingConfig | None = None
    policy: PromotionPolicy | None = None

    @model_validator(mode="after")
    def _something(self) -> ProjectPatch:
        if not self.model_fields_set:
            raise ValueError("give at least one of description, contract, training, policy")
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class RegisterVersion(Command):
    artifact_uri: S3Uri
    artifact_sha256: Sha256
    dataset_id: DatasetId
    training_job: JobName
    code_version: CodeVersion
    hyperparameters: dict[ParamName, HyperValue] = Field(default_factory=dict, max_length=100)
    metrics: dict[MetricName, FiniteFloat] = Field(default_factory=dict, max_length=100)
    parent_version: VersionNumber | None = None
    branch: BranchName | None = Field(
        default=None, description="defaults to the run's or the parent's branch, else main"
    )
    run_id: RunId | None = None
    tags: dict[TagKey, TagValue] = Field(default_factory=dict, max_length=50)
    description: Description = ""


class VersionPatch(Command):
    description: Description | None = None
    set_tags: dict[TagKey, TagValue] = Field(default_factory=dict, max_length=50)
    remove_tags: list[TagKey] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _something(self) -> VersionPatch:
        if self.description is None and not self.set_tags and not self.remove_tags:
            raise ValueError("give at least one of description, set_tags, remove_tags")
        both = set(self.set_tags) & set(self.remove_tags)
        if both:
            raise ValueError(f"tags both set and removed: {sorted(both)}")
        return self


class NewRun(Command):
    base_version: VersionNumber | None = Field(default=None, description="the version to branch from")
    branch: BranchName | None = Field(default=None, description="defaults to the base version's branch, else main")
    overrides: RunOverrides = fresh(RunOverrides)


__all__ = ["NewProject", "NewRun", "ProjectPatch", "RegisterVersion", "VersionPatch"]
