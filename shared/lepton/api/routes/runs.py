"""Runs: branch records (a run from a base version with overrides), each executed by the lifecycle
state machine: recording a run starts its execution, named `<project>-<run_id>`; stopping a run
stops that execution."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, Field

from lepton.api.deps import Caller, Lifecycle, Service, page_size
from lepton.api.models import PageOut, ReasonBody
from lepton.api.routes.common import Cursor, Limit, ProjectPath, RunPath, starting, with_unavailable
from lepton.errors import ExecutionNotStarted, ExecutionNotStopped, IllegalTransition
from lepton.lifecycle import LifecycleStart, run_execution_name
from lepton.registry.commands import NewRun
from lepton.registry.models import FailureCause, Run, RunStatus

router = APIGatewayRouter()
TAGS = ["runs"]


class RunStarted(Run):
    execution_arn: str = Field(  # narrowed: a started run's execution is known
        description="the lifecycle execution that trains, evaluates and registers the run (the run records it "
        "when the execution begins to run it)"
    )


class RunExecution(BaseModel):
    run_id: str
    execution_arn: str = Field(description="the run's execution: the one just started, or the one it already had")


def _start(lifecycle: Lifecycle, run: Run) -> str:
    """Start the lifecycle for a recorded run (its execution's ARN); the execution name makes a
    repeated start harmless."""
    try:
        arn, _ = lifecycle.start(
            run_execution_name(run.project, run.run_id), LifecycleStart(project=run.project, run_id=run.run_id)
        )
        return arn
    except (ClientError, BotoCoreError) as exc:  # logged with its cause by the API's error handler (5xx)
        raise ExecutionNotStarted(
            f"run {run.run_id} is recorded but its execution did not start ({exc}); "
            f"start it with POST /projects/{run.project}/runs/{run.run_id}/start",
            run_id=run.run_id,
        ) from exc


def started(lifecycle: Lifecycle, run: Run) -> RunStarted:
    """A run just recorded, with the execution started for it."""
    return RunStarted(**{**run.model_dump(), "execution_arn": _start(lifecycle, run)})


@router.post(
    "/projects/<project>/runs",
    status_code=201,
    tags=TAGS,
    summary="Record a run and start its lifecycle execution (trainer)",
    responses=starting(201, RunStarted, "the run, recorded, and its execution"),
)
def create_run(project: ProjectPath, body: NewRun, svc: Service, caller: Caller, lifecycle: Lifecycle) -> RunStarted:
    return started(lifecycle, svc.create_run(caller, project, body))


@router.post(
    "/projects/<project>/runs/<run_id>/start",
    tags=TAGS,
    summary="Start a PENDING run's lifecycle execution (trainer); idempotent",
    responses=starting(200, RunExecution, "the run's execution"),
)
def start_run(
    project: ProjectPath, run_id: RunPath, svc: Service, caller: Caller, lifecycle: Lifecycle
) -> RunExecution:
    run = svc.run_to_start(caller, project, run_id)
    return RunExecution(run_id=run.run_id, execution_arn=_start(lifecycle, run))


STOPPED_BY_REQUEST = "RunStopped"  # the run's failure.error and its execution's error


@router.post(
    "/projects/<project>/runs/<run_id>/stop",
    tags=TAGS,
    summary="Stop a PENDING or RUNNING run (trainer): its execution is stopped, the run STOPPED",
    responses=with_unavailable(
        200,
        Run,
        "the run, STOPPED",
        "the run is recorded STOPPED but Step Functions did not stop its execution: ask again (details.run_id)",
    ),
)
def stop_run(
    project: ProjectPath, run_id: RunPath, body: ReasonBody, svc: Service, caller: Caller, lifecycle: Lifecycle
) -> Run:
    """The run is recorded STOPPED by the caller with the reason first (audited), then its execution
    (the one it runs in, or for a PENDING run the one the API started for it, if any) is stopped
    with the caller and reason as its error and cause; Step Functions stops the job it waits on.
    In that order the record is the caller's: the execution's ABORTED status change, however soon
    ExecutionEnded handles it, finds the run STOPPED and changes nothing, and an execution that
    could not be stopped is refused by the registry at its next step. A repeated stop answers the
    STOPPED run and stops its execution again (a no-op once it has ended)."""
    run = svc.run_to_stop(caller, project, run_id)
    arn = run.execution_arn or lifecycle.arn_of(run_execution_name(project, run_id))
    if run.status is not RunStatus.STOPPED:
        failure = FailureCause(error=STOPPED_BY_REQUEST, cause=body.reason)
        run, _ = svc.close_run(caller, project, run_id, arn, failure, started_for=True, status=RunStatus.STOPPED)
        if run.status is not RunStatus.STOPPED:  # it ended in between
            raise IllegalTransition(
                f"run {run_id} ended {run.status.value} before it was stopped",
                run_id=run_id,
                current_status=run.status.value,
            )
    try:
        lifecycle.stop(arn, STOPPED_BY_REQUEST, f"stopped by {caller.principal}: {body.reason}")
    except (ClientError, BotoCoreError) as exc:  # logged with its cause by the API's error handler (5xx)
        raise ExecutionNotStopped(
            f"run {run_id} is recorded STOPPED but its execution was not stopped ({exc}): "
            f"ask again with POST /projects/{project}/runs/{run_id}/stop",
            run_id=run_id,
        ) from exc
    return run


@router.get("/projects/<project>/runs", tags=TAGS, summary="Runs, newest first; filter by status")
def list_runs(
    project: ProjectPath,
    svc: Service,
    caller: Caller,
    status: Annotated[RunStatus | None, Query(description="PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED")] = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> PageOut[Run]:
    page = svc.list_runs(caller, project, page_size(limit), cursor, status)
    return PageOut(items=page.items, next_cursor=page.cursor)


@router.get("/projects/<project>/runs/<run_id>", tags=TAGS, summary="A run")
def get_run(project: ProjectPath, run_id: RunPath, svc: Service, caller: Caller) -> Run:
    return svc.get_run(caller, project, run_id)
