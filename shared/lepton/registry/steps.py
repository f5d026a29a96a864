"""What the lifecycle state machine asks of the registry: register the model version a finished
training job produced, and mark a run (and its version) FAILED with the cause a Catch caught.

Inputs are what Step Functions has at hand: the `.sync` output of CreateTrainingJob is the
DescribeTrainingJob response (PascalCase), a Catch's ResultPath holds {"Error", "Cause"}.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StringConstraints

from lepton.data.models import ProjectId
from lepton.registry.commands import RegisterVersion
from lepton.registry.models import (
    BranchName,
    CodeVersion,
    DatasetId,
    ExecutionArn,
    FailureCause,
    FiniteFloat,
    JobName,
    MetricName,
    RunId,
    RunStatus,
    S3Uri,
    Sha256,
    TagKey,
    TagValue,
    VersionNumber,
    VersionStatus,
)
from lepton.registry.service import Actor, RegistryService

STATE_MACHINE_ACTOR = "lepton:lifecycle"

# hyperparameters SageMaker adds to script-mode jobs: not the model's
_SAGEMAKER_INTERNAL = ("sagemaker_", "_tuning_objective_metric")


class StepModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class ModelArtifacts(StepModel):
    s3_model_artifacts: S3Uri = Field(alias="S3ModelArtifacts")


class MetricDatum(StepModel):
    metric_name: MetricName = Field(alias="MetricName")
    value: FiniteFloat = Field(alias="Value")


class TrainingJob(StepModel):
    """The fields of DescribeTrainingJob the registry records."""

    training_job_name: JobName = Field(alias="TrainingJobName")
    training_job_status: str = Field(default="Completed", alias="TrainingJobStatus")
    model_artifacts: ModelArtifacts = Field(alias="ModelArtifacts")
    hyperparameters: dict[str, str] = Field(default_factory=dict, alias="HyperParameters")
    final_metric_data_list: list[MetricDatum] = Field(default_factory=list, alias="FinalMetricDataList")

    def model_hyperparameters(self) -> dict[str, Any]:
        """SageMaker passes hyperparameters as strings (script mode JSON-encodes them): decode
        JSON scalars and drop SageMaker's own entries."""
        out: dict[str, Any] = {}
        for name, raw in self.hyperparameters.items():
            if name.startswith(_SAGEMAKER_INTERNAL):
                continue
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw
            out[name] = value if isinstance(value, bool | int | float | str) else raw
        return out


class RegisterInput(StepModel):
    """Register: after training (and evaluation) finished."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    project: ProjectId
    run_id: RunId | None = None
    dataset_id: DatasetId
    code_version: CodeVersion
    training_job: TrainingJob = Field(validation_alias=AliasChoices("training_job", "TrainingJob"))
    evaluation_metrics: dict[MetricName, FiniteFloat] = Field(
        default_factory=dict, description="the evaluation job's metrics; they override the training job's"
    )
    evaluation_uri: S3Uri | None = Field(
        default=None, description="the evaluation job's output prefix; its evaluation.json metrics become test:*"
    )
    artifact_sha256: Sha256 | None = Field(default=None, description="computed from S3 when absent")
    parent_version: VersionNumber | None = None
    branch: BranchName | None = None
    tags: dict[TagKey, TagValue] = Field(default_factory=dict, max_length=50)


class RegisterOutput(StepModel):
    project: str
    version: int
    created: bool
    status: VersionStatus
    branch: str
    parent_version: int | None
    artifact_uri: str
    artifact_sha256: str
    run_id: str | None


class StepError(StepModel):
    error: Annotated[str, StringConstraints(min_length=1, max_length=256)] = Field(alias="Error")
    cause: str = Field(default="", alias="Cause")


class MarkFailedInput(StepModel):
    """MarkFailed: a Catch caught `error` while running `run_id` (and maybe its `version`)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    project: ProjectId
    run_id: RunId | None = None
    version: VersionNumber | None = None
    step: Annotated[str, StringConstraints(max_length=128)] | None = None
    error: StepError
    execution_arn: ExecutionArn | None = Field(
        default=None, description="the execution that failed: a run another execution runs is left alone"
    )


class MarkFailedFromState(StepModel):
    """MarkFailed as the lifecycle state machine calls it: the state as the Catch left it.

    Every Catch puts its error under `failed.<StateName>`, so the step that failed is known; the
    run and version are whatever the run had reached (`prepared.run.run_id`, else the `run_id` an
    API-started execution was given; `registered.version`). A failed SageMaker job's cause is its
    whole description: the person reading the run wants its FailureReason."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    state: dict[str, Any]
    execution_arn: ExecutionArn | None = None

    def to_input(self) -> MarkFailedInput:
        state = self.state
        step, caught = caught_failure(state.get("failed"))
        run = (state.get("prepared") or {}).get("run") or {}
        version = (state.get("registered") or {}).get("version") or {}
        return MarkFailedInput(
            project=state["project"],
            run_id=run.get("run_id") or state.get("run_id"),
            version=version.get("version"),
            step=step,
            error=caught,
            execution_arn=self.execution_arn,
        )


def caught_failure(failed: Any) -> tuple[str, StepError]:
    """What a Catch recorded, `{"<StateName>": {"Error", "Cause"}}` (the state's `failed`, and the
    cause of the Fail state's LifecycleFailed): the step that failed and its error, the cause made
    readable. A ValueError when it is not that shape."""
    if not isinstance(failed, dict) or len(failed) != 1:
        raise ValueError("no single `failed.<StateName>` error")
    ((step, error),) = failed.items()
    caught = StepError.model_validate(error)
    return str(step), caught.model_copy(update={"cause": readable_cause(caught.cause)})


def readable_cause(cause: str) -> str:
    """A SageMaker job description (what a failed `.sync` task reports) becomes its name and
    FailureReason; any other cause is kept as it is."""
    try:
        described = json.loads(cause)
    except ValueError:
        return cause
    if not isinstance(described, dict) or "FailureReason" not in described:
        return cause
    name = next(
        (
            described[k]
            for k in ("TrainingJobName", "ProcessingJobName", "HyperParameterTuningJobName")
            if k in described
        ),
        "the job",
    )
    status = next(
        (
            described[k]
            for k in ("TrainingJobStatus", "ProcessingJobStatus", "HyperParameterTuningJobStatus")
            if k in described
        ),
        "Failed",
    )
    return f"{name} {status}: {described['FailureReason']}"


class MarkFailedOutput(StepModel):
    project: str
    run_id: str | None
    run_status: RunStatus | None
    version: int | None
    version_status: VersionStatus | None
    error: str


def register_from_training_job(service: RegistryService, step: RegisterInput) -> RegisterOutput:
    job = step.training_job
    if job.training_job_status != "Completed":
        raise ValueError(f"training job {job.training_job_name} is {job.training_job_status}, not Completed")
    metrics = {m.metric_name: m.value for m in job.final_metric_data_list}
    if step.evaluation_uri is not None:
        metrics.update(service.evaluation_metrics(step.evaluation_uri.rstrip("/") + "/evaluation.json"))
    metrics.update(step.evaluation_metrics)
    uri = job.model_artifacts.s3_model_artifacts
    sha = step.artifact_sha256
    checked = sha is None
    if sha is None:
        sha = service.artifact_sha256(uri)
    command = RegisterVersion(
        artifact_uri=uri,
        artifact_sha256=sha,
        dataset_id=step.dataset_id,
        training_job=job.training_job_name,
        code_version=step.code_version,
        hyperparameters=job.model_hyperparameters(),
        metrics=metrics,
        parent_version=step.parent_version,
        branch=step.branch,
        run_id=step.run_id,
        tags=step.tags,
    )
    actor = Actor(STATE_MACHINE_ACTOR, system=True)
    version, created = service.register_version(actor, step.project, command, artifact_checked=checked)
    return RegisterOutput(
        project=version.project,
        version=version.number,
        created=created,
        status=version.status,
        branch=version.branch,
        parent_version=version.parent_version,
        artifact_uri=version.artifact_uri,
        artifact_sha256=version.artifact_sha256,
        run_id=version.run_id,
    )


def mark_failed(service: RegistryService, step: MarkFailedInput) -> MarkFailedOutput:
    failure = FailureCause(error=step.error.error, cause=step.error.cause[:32_000], step=step.step)
    if step.run_id is None and step.version is None:
        # the run failed before it was recorded (PrepareTraining): nothing in the registry to mark;
        # the execution itself ends Failed with this cause
        return MarkFailedOutput(
            project=step.project, run_id=None, run_status=None, version=None, version_status=None, error=failure.error
        )
    run, version = service.mark_failed(
        Actor(STATE_MACHINE_ACTOR, system=True),
        step.project,
        failure,
        run_id=step.run_id,
        version=step.version,
        execution_arn=step.execution_arn,
    )
    return MarkFailedOutput(
        project=step.project,
        run_id=run.run_id if run else None,
        run_status=run.status if run else None,
        version=version.number if version else None,
        version_status=version.status if version else None,
        error=failure.error,
    )
