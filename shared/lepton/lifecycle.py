"""Preparing a lifecycle run: from "a dataset version arrived" (or "run this branch") to the exact
SageMaker job requests the state machine sends.

Pure: the handler passes the project, the dataset, the run and the published job code (see
cli/jobs_code.py); the output is what the ASL's Train/Tune/Evaluate states read. Infrastructure
facts (role, images, instance types, KMS key) come from the template through
DefinitionSubstitutions, not from here."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, NamedTuple, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from lepton.data.models import DatasetVersion, ProjectId
from lepton.registry.models import DatasetId, ExecutionArn, FailureCause, Project, Run, RunId, RunStatus

EVALUATION_FGSM_EPSILON = "0.1"


class LifecycleStart(BaseModel):
    """The execution input: a dataset to train on (the ingest function) or a run to execute (the API)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    project: ProjectId
    dataset_id: DatasetId | None = None
    run_id: RunId | None = None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class PrepareTrainingInput(BaseModel):
    """PrepareTraining's event: the execution input and the execution it runs in (the state machine
    passes `$$.Execution.Id` and `$$.Execution.StartTime`), so that the run a data start records is
    named after its execution and a retried invocation returns that run instead of recording another."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: LifecycleStart
    execution_id: ExecutionArn
    execution_started: AwareDatetime

    def run_id(self) -> str:
        """The run this execution records: the format of every run id (its start in ms, in hex, then
        10 hex digits), the digits from the execution's id, so the same for every retry."""
        ms = (self.execution_started - _EPOCH) // timedelta(milliseconds=1)  # exact: no float rounding
        return f"run-{ms:x}{hashlib.sha256(self.execution_id.encode()).hexdigest()[:10]}"


def run_execution_name(project: str, run_id: str) -> str:
    """The name of the execution the API starts for a run it recorded (lepton.executions)."""
    return f"{project}-{run_id}"


class ExecutionStatusChange(BaseModel):
    """The detail of Step Functions' "Step Functions Execution Status Change" event (source
    aws.states, on the default bus): a lifecycle execution started or ended. Dates are epoch ms;
    input and output are JSON strings (null when too large to include)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    execution_arn: ExecutionArn = Field(alias="executionArn")
    state_machine_arn: Annotated[str, StringConstraints(min_length=1, max_length=2048)] = Field(alias="stateMachineArn")
    name: Annotated[str, Field(min_length=1, max_length=80)]
    status: Literal["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]
    start_date: Annotated[int, Field(alias="startDate", ge=0)]
    stop_date: Annotated[int | None, Field(alias="stopDate", ge=0)] = None
    input: str | None = None

    def started_at(self) -> datetime:
        return _EPOCH + timedelta(milliseconds=self.start_date)  # exact, as PrepareTraining sees it


LIFECYCLE_FAILED = "LifecycleFailed"  # the Fail state's error (stacks/statemachines/lifecycle.asl.json)


class UnfinishedEnd(NamedTuple):
    error: str  # the run's failure.error: Step Functions' name for that history event
    run_status: RunStatus


# how an execution can end without ending its run, and what its run becomes: a stopped execution
# stops its run; the others fail it
UNFINISHED_ENDS = {
    "ABORTED": UnfinishedEnd("ExecutionAborted", RunStatus.STOPPED),
    "TIMED_OUT": UnfinishedEnd("ExecutionTimedOut", RunStatus.FAILED),
    "FAILED": UnfinishedEnd("ExecutionFailed", RunStatus.FAILED),
}


class ClosedRun(BaseModel):
    """What closing an ended execution's run did: the run's status now and whether this closed it
    (false for a repeated event), or why there was no run to close."""

    model_config = ConfigDict(frozen=True)

    execution_arn: str
    status: str
    project: str | None = None
    run_id: str | None = None
    run_status: str | None = None
    closed: bool = False
    note: str = ""


def execution_failure(description: dict[str, Any] | None) -> FailureCause | None:
    """The failure a FAILED lifecycle execution reports (DescribeExecution), as a run records it:
    the Fail state's LifecycleFailed carries the failed step's {Error, Cause} under the step's name
    (the ASL), recorded as MarkFailed records it; any other error is taken as it is. None when there
    is no description or no error in it."""
    from lepton.registry.steps import caught_failure

    if not description or not description.get("error"):
        return None
    error, cause = str(description["error"]), str(description.get("cause") or "")
    if error == LIFECYCLE_FAILED:
        try:
            step, caught = caught_failure(json.loads(cause))
            return FailureCause(error=caught.error, cause=caught.cause[:32_000], step=step[:128])
        except ValueError:  # not the Fail state's shape: keep it whole
            pass
    return FailureCause(error=error[:256], cause=cause[:32_000])


def close_unfinished_run(
    service: Any,
    project: str,
    run_id: str,
    execution_arn: str,
    status: str,
    stopped: datetime | None,
    description: dict[str, Any] | None,
    *,
    started_for: bool,
) -> tuple[Run, bool]:
    """RegistryService.close_run for an execution that ended `status` (a key of UNFINISHED_ENDS):
    the run becomes STOPPED or FAILED with, for FAILED, the failure the execution's description
    reports (`execution_failure`), else Execution<Status> and a cause naming the execution and
    when it stopped. The run and whether this closed it."""
    from lepton.registry.service import Actor
    from lepton.registry.steps import STATE_MACHINE_ACTOR

    end = UNFINISHED_ENDS[status]
    at = stopped.astimezone(UTC).isoformat() if stopped is not None else "its end"
    failure = (execution_failure(description) if status == "FAILED" else None) or FailureCause(
        error=end.error, cause=f"execution {execution_arn} ended {status} at {at} before its run ended"
    )
    return service.close_run(
        Actor(STATE_MACHINE_ACTOR, system=True),
        project,
        run_id,
        execution_arn,
        failure,
        started_for=started_for,
        status=end.run_status,
    )


def close_ended_run(
    service: Any, change: ExecutionStatusChange, describe: Callable[[str], dict[str, Any] | None] | None = None
) -> ClosedRun:
    """A lifecycle execution ended ABORTED, TIMED_OUT or FAILED: the run it was running becomes
    STOPPED (ABORTED) or FAILED unless something already ended it (RegistryService.close_run).

    A failed step is recorded by MarkFailed, and then this finds the run FAILED and leaves it. What
    only this records: an execution stopped (StopExecution, the console's Stop), one that timed out,
    and one whose MarkFailed could not reach the registry. The run is the one the execution's input
    names (an API-started execution: `run_id`) or the one PrepareTraining records for a data start
    (named after the execution's ARN and start). An execution that ended before it recorded a run,
    or whose input names no lifecycle run, has nothing to close.

    `describe` (DescribeExecution; None when it cannot answer) gives a FAILED execution's error and
    cause: the failed step's, as MarkFailed would have recorded them (`execution_failure`)."""
    from lepton.errors import ProjectNotFound, RunNotFound

    out = ClosedRun(execution_arn=change.execution_arn, status=change.status)
    if change.status not in UNFINISHED_ENDS:
        return out.model_copy(update={"note": f"the execution is {change.status}: its run ends with it"})
    try:
        start = LifecycleStart.model_validate_json(change.input or "")
    except ValueError:
        return out.model_copy(update={"note": "the execution's input names no lifecycle run"})
    if start.run_id is not None:
        run_id = start.run_id
    elif start.dataset_id is not None:
        run_id = PrepareTrainingInput(
            start=start, execution_id=change.execution_arn, execution_started=change.started_at()
        ).run_id()
    else:
        return out.model_copy(update={"project": start.project, "note": "the execution's input names no run"})
    out = out.model_copy(update={"project": start.project, "run_id": run_id})
    stopped = _EPOCH + timedelta(milliseconds=change.stop_date) if change.stop_date is not None else None
    described = describe(change.execution_arn) if change.status == "FAILED" and describe is not None else None
    try:
        run, closed = close_unfinished_run(
            service,
            start.project,
            run_id,
            change.execution_arn,
            change.status,
            stopped,
            described,
            started_for=start.run_id is not None and change.name == run_execution_name(start.project, start.run_id),
        )
    except (ProjectNotFound, RunNotFound) as exc:
        return out.model_copy(update={"note": f"nothing to close: {exc}"})
    return out.model_copy(update={"run_status": run.status.value, "closed": closed})


CODE_VERSION = re.compile(r"^[0-9a-f]{64}$")


class JobCode(BaseModel):
    """code/jobs/current.json, written when the job code is published (cli/jobs_code.py)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    code_version: Annotated[str, StringConstraints(pattern=CODE_VERSION.pattern)]
    files_uri: str
    sourcedir_uri: str

    @classmethod
    def at(cls, bucket: str, code_version: str) -> JobCode:
        """Where cli/jobs_code.py publishes a code version: the content-addressed code/jobs/<sha256>/."""
        prefix = f"s3://{bucket}/code/jobs/{code_version}"
        return cls(code_version=code_version, files_uri=f"{prefix}/files/", sourcedir_uri=f"{prefix}/sourcedir.tar.gz")


class PublishedCode(Protocol):
    """The job code in the data bucket (the handler reads it from S3)."""

    def current(self) -> JobCode:
        """What code/jobs/current.json names: the code new runs use."""
        ...

    def version(self, code_version: str) -> JobCode:
        """A code version published earlier; raises if it never was."""
        ...


class TuningRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    job_name: str
    config: dict[str, Any]


class PreparedRun(BaseModel):
    """What the state machine's job states read ($.prepared.run)."""

    model_config = ConfigDict(frozen=True)

    project: str
    run_id: str
    branch: str
    base_version: int | None
    dataset_id: str
    code_version: str
    training_job_name: str
    hyperparameters: dict[str, str]
    input_data_config: list[dict[str, Any]]
    output_path: str
    max_runtime_seconds: int
    tags: list[dict[str, str]]
    tuning: TuningRequest | None = None
    evaluation_job_name: str
    evaluation_arguments: list[str]
    evaluation_output_uri: str
    test_uri: str
    code_uri: str

    def for_state_machine(self) -> dict[str, Any]:
        """JSON for the state machine: `tuning` is null for a plain training run, and the Choice state
        tests it with IsNull (a path that is always there: moto's interpreter logs an error for every
        IsPresent test of a missing one)."""
        return self.model_dump(mode="json")


def job_name(*parts: str, limit: int) -> str:
    """A SageMaker job name (letters, digits, hyphens; at most `limit` characters), keeping the
    run's unique suffix whole when the project's name must be shortened."""
    cleaned = [re.sub(r"[^A-Za-z0-9-]", "-", p).strip("-") for p in parts]
    head, tail = cleaned[:-1], cleaned[-1]
    room = limit - len(tail) - len(head)
    head = [h[: max(1, room // max(1, len(head)))] for h in head]
    return re.sub(r"-{2,}", "-", "-".join([*head, tail]))[:limit].strip("-")


def _channel(name: str, uri: str, content_type: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}
        },
        "ContentType": content_type,
        "InputMode": "File",
    }


def evaluation_arguments() -> list[str]:
    """The evaluation job's arguments: every /opt/ml path named, so a local runner can relocate them."""
    return [
        *("--model-dir", "/opt/ml/processing/model"),
        *("--test-dir", "/opt/ml/processing/test"),
        *("--output-dir", "/opt/ml/processing/evaluation"),
        *("--failure-file", "/opt/ml/output/message"),
        *("--fgsm-epsilon", EVALUATION_FGSM_EPSILON),
    ]


def prepare(
    project: Project, dataset: DatasetVersion, run: Run, code: JobCode, bucket: str, region: str
) -> PreparedRun:
    prefix = dataset.curated_prefix.rstrip("/") + "/"
    suffix = run.run_id.removeprefix("run-")
    hyperparameters = {name: json.dumps(value) for name, value in sorted(run.hyperparameters.items())}
    hyperparameters.update(
        {
            "sagemaker_program": json.dumps("train.py"),
            "sagemaker_submit_directory": json.dumps(code.sourcedir_uri),
            "sagemaker_region": json.dumps(region),
            "sagemaker_container_log_level": "20",
        }
    )
    tuning = None
    if project.training.tuning is not None and run.base_version is None and not run.overrides.hyperparameters:
        # a plain data-triggered run tunes when the project says so; a branch with explicit
        # overrides trains exactly what it asked for
        for name in project.training.tuning.ranges:
            hyperparameters.pop(name, None)
        tuning = TuningRequest(job_name=job_name("t", suffix, limit=32), config=project.training.tuning.to_sagemaker())
    run_prefix = f"s3://{bucket}/models/{project.name}/{run.run_id}"
    return PreparedRun(
        project=project.name,
        run_id=run.run_id,
        branch=run.branch,
        base_version=run.base_version,
        dataset_id=dataset.dataset_id,
        code_version=code.code_version,
        training_job_name=job_name(project.name, suffix, limit=63),
        hyperparameters=hyperparameters,
        input_data_config=[
            _channel("train", prefix + "train/", "application/x-parquet"),
            _channel("validation", prefix + "validation/", "application/x-parquet"),
            _channel("stats", prefix + "stats.json", "application/json"),
        ],
        output_path=f"{run_prefix}/training/",
        max_runtime_seconds=project.training.max_runtime_s,
        tags=[
            {"Key": "lepton:project", "Value": project.name},
            {"Key": "lepton:run", "Value": run.run_id},
            {"Key": "lepton:dataset", "Value": dataset.dataset_id},
        ],
        tuning=tuning,
        evaluation_job_name=job_name(project.name, "eval", suffix, limit=63),
        evaluation_arguments=evaluation_arguments(),
        evaluation_output_uri=f"{run_prefix}/evaluation",
        test_uri=prefix + "test/",
        code_uri=code.files_uri,
    )


def start_run(
    service: Any,
    event: PrepareTrainingInput,
    code: PublishedCode,
    bucket: str,
    region: str,
    describe: Callable[[str], dict[str, Any] | None] | None = None,
) -> PreparedRun:
    """Find or create the run this execution executes, prepare its job requests, and mark it RUNNING
    in this execution.

    A data-triggered start (dataset_id) creates a run on `main` with the project's training
    configuration and the current job code, which the run records (its code_version), named after the
    execution and RUNNING in it from that one write; an API-started one (run_id) executes the run the
    API recorded (a branch from a base version with overrides), which becomes RUNNING here. Either
    trains on the code version the run pins (a branch inherits its base version's), else the current
    one. A retry of this step finds the run its first attempt recorded and keeps to that run's code,
    even if newer code was published in between.

    Everything that can refuse the start is checked before a run is created or marked RUNNING, so a
    refused start leaves no new run behind, and a refused API-started run is still PENDING for
    MarkFailed to fail. A run another execution is running, or one that has ended, is refused (409).

    `describe` (DescribeExecution) closes a race with ExecutionEnded: a stop lets this invocation
    finish, and the ABORTED status change may be handled before the run is written here (nothing to
    close then). So once the run is RUNNING in this execution, the execution is described; if it has
    ended already, the run is closed here as ExecutionEnded would have closed it. Either this check
    or ExecutionEnded then sees the run."""
    from lepton.errors import RunNotFound, ValidationFailed
    from lepton.registry.commands import NewRun
    from lepton.registry.models import RunOverrides
    from lepton.registry.service import Actor
    from lepton.registry.steps import STATE_MACHINE_ACTOR

    actor = Actor(STATE_MACHINE_ACTOR, system=True)
    start = event.start
    project = service.get_project(actor, start.project)
    job_code: JobCode | None = None
    if start.run_id is not None:
        run = service.get_run(actor, start.project, start.run_id)
    elif start.dataset_id is not None:
        try:
            run = service.get_run(actor, start.project, event.run_id())
        except RunNotFound:
            job_code = code.current()
            overrides = RunOverrides(dataset_id=start.dataset_id, code_version=job_code.code_version)
            run = service.create_run(
                actor,
                start.project,
                NewRun(overrides=overrides),
                run_id=event.run_id(),
                execution_arn=event.execution_id,
            )
    else:
        raise ValidationFailed("the execution input names neither a dataset_id nor a run_id", field="dataset_id")
    if job_code is None:
        job_code = _pinned_code(code, run)
    if run.dataset_id is None:
        raise ValidationFailed(f"run {run.run_id} has no dataset to train on", field="dataset_id")
    dataset = service.get_dataset(actor, start.project, run.dataset_id)
    prepared = prepare(project, dataset, run, job_code, bucket, region)
    service.begin_run(actor, start.project, run.run_id, event.execution_id)  # a no-op when it runs here already
    described = describe(event.execution_id) if describe is not None else None
    if described is not None and described.get("status") in UNFINISHED_ENDS:
        stopped = described.get("stopDate")
        close_unfinished_run(
            service,
            start.project,
            run.run_id,
            event.execution_id,
            str(described["status"]),
            stopped if isinstance(stopped, datetime) else None,
            described,
            started_for=False,
        )
    return prepared


def _pinned_code(code: PublishedCode, run: Run) -> JobCode:
    """The job code a recorded run trains with: the version it pins, else the current one."""
    from lepton.errors import ValidationFailed

    if run.code_version is None:
        return code.current()
    if not CODE_VERSION.match(run.code_version):
        raise ValidationFailed(
            f"run {run.run_id} pins code_version {run.code_version!r}, which is not a published job code "
            "version (the sha256 under code/jobs/)",
            field="code_version",
        )
    return code.version(run.code_version)
