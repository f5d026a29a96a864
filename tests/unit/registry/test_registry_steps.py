"""The registry_step Lambda (register, mark_failed) with the sample events in events/steps/."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from types import ModuleType
from typing import Any

import boto3
import pytest
from pydantic import ValidationError
from registry_testkit import ALICE, ROOT, LambdaContext, dataset, make_service, registration

from lepton.errors import IntegrityError
from lepton.registry.commands import NewProject, NewRun
from lepton.registry.models import RunOverrides, RunStatus, VersionStatus
from lepton.registry.service import RegistryService
from lepton.registry.wiring import build_service

ARCHIVE = b"model.tar.gz bytes" * 1000


def load_function(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"lepton_fn_{name}", ROOT / "functions" / name / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sample(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "events" / "steps" / name).read_text())


@pytest.fixture
def fn(table: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("REGISTRY_TABLE", table)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "lepton-registry-step")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Lepton")
    build_service.cache_clear()
    return load_function("registry_step")


@pytest.fixture
def world(table: str) -> dict[str, Any]:
    """Project wine with the sample's dataset and parent version 2 on branch main, a run, and
    the training job's archive in S3."""
    svc = make_service(table)
    svc.create_project(ALICE, NewProject(name="wine"))
    ds = dataset("wine", 1).model_copy(update={"dataset_id": "ds-0123456789abcdef0123"})
    svc.register_dataset(ALICE, ds)
    for i in (1, 2):
        svc.register_version(ALICE, "wine", registration(ds.dataset_id, f"wine-train-000{i}"))
    run = svc.create_run(
        ALICE,
        "wine",
        NewRun(base_version=2, overrides=RunOverrides(hyperparameters={"epochs": 30})),
    )
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="lepton-models")
    s3.put_object(Bucket="lepton-models", Key="wine-train-0003/output/model.tar.gz", Body=ARCHIVE)
    return {"svc": svc, "run": run}


def register_event(world: dict[str, Any]) -> dict[str, Any]:
    event = sample("register.json")
    event["run_id"] = world["run"].run_id
    return event


def test_register_from_a_training_job(fn: ModuleType, world: dict[str, Any]) -> None:
    out = fn.register(register_event(world), LambdaContext())
    assert out["version"] == 3 and out["created"] and out["status"] == "REGISTERED"
    assert out["artifact_sha256"] == hashlib.sha256(ARCHIVE).hexdigest()
    svc: RegistryService = world["svc"]
    v = svc.get_version(ALICE, "wine", 3)
    assert v.hyperparameters == {"epochs": 30, "learning_rate": 0.001, "hidden_sizes": "128,64", "optimizer": "adam"}
    assert v.metrics["validation:accuracy"] == 0.956 and v.metrics["test:f1_macro"] == 0.947
    assert (v.parent_version, v.run_id, v.created_by) == (2, world["run"].run_id, "lepton:lifecycle")
    assert svc.get_run(ALICE, "wine", world["run"].run_id).status is RunStatus.SUCCEEDED
    # the state machine retries the task: the same version, not a new one
    again = fn.register(register_event(world), LambdaContext())
    assert (again["version"], again["created"]) == (3, False)


def test_register_refuses_a_wrong_checksum_and_a_bad_input(fn: ModuleType, world: dict[str, Any]) -> None:
    event = register_event(world)
    event["artifact_sha256"] = "0" * 64
    with pytest.raises(IntegrityError):
        fn.register(event, LambdaContext())
    event = register_event(world)
    event["training_job"]["ModelArtifacts"]["S3ModelArtifacts"] = "file:///tmp/model"
    with pytest.raises(ValidationError, match="S3ModelArtifacts"):
        fn.register(event, LambdaContext())
    assert world["svc"].get_project(ALICE, "wine").version_count == 2


def test_mark_failed_with_the_catch_output(fn: ModuleType, world: dict[str, Any]) -> None:
    fn.register(register_event(world), LambdaContext())
    event = sample("mark_failed.json")
    event["run_id"] = world["run"].run_id
    out = fn.mark_failed(event, LambdaContext())
    assert out == {
        "project": "wine",
        "run_id": world["run"].run_id,
        "run_status": "FAILED",
        "version": 3,
        "version_status": "FAILED",
        "error": "SageMaker.ResourceLimitExceeded",
    }
    failure = world["svc"].get_version(ALICE, "wine", 3).failure
    assert failure.step == "Deploy" and "service limit" in failure.cause


def test_mark_failed_by_version(fn: ModuleType, world: dict[str, Any]) -> None:
    fn.register(register_event(world), LambdaContext())
    out = fn.mark_failed(sample("mark_failed_version.json"), LambdaContext())
    assert (out["version"], out["version_status"], out["run_id"]) == (3, "FAILED", None)
    assert world["svc"].get_version(ALICE, "wine", 3).status is VersionStatus.FAILED


def test_register_reads_the_evaluation_report_as_test_metrics(fn: ModuleType, world: dict[str, Any]) -> None:
    report = {"schema_version": 1, "metrics": {"accuracy": 0.93, "f1_macro": 0.91, "latency_p99_ms": 0.4}}
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket="lepton-models", Key="runs/r1/evaluation/evaluation.json", Body=json.dumps(report).encode()
    )
    event = register_event(world)
    event.pop("evaluation_metrics", None)
    event["evaluation_uri"] = "s3://lepton-models/runs/r1/evaluation"
    fn.register(event, LambdaContext())
    metrics = world["svc"].get_version(ALICE, "wine", 3).metrics
    assert (metrics["test:accuracy"], metrics["test:f1_macro"], metrics["test:latency_p99_ms"]) == (0.93, 0.91, 0.4)
    assert metrics["validation:accuracy"] == 0.956  # the training job's own metrics stay


def test_register_refuses_a_missing_evaluation_report(fn: ModuleType, world: dict[str, Any]) -> None:
    event = register_event(world)
    event["evaluation_uri"] = "s3://lepton-models/runs/none/evaluation"
    with pytest.raises(Exception, match="no evaluation report"):
        fn.register(event, LambdaContext())
    assert world["svc"].get_project(ALICE, "wine").version_count == 2


def test_mark_failed_from_the_state_machine_state(fn: ModuleType, world: dict[str, Any]) -> None:
    state = {
        "project": "wine",
        "dataset_id": "ds-0123456789abcdef0123",
        "prepared": {"run": {"run_id": world["run"].run_id, "training_job_name": "wine-x"}},
        "failed": {"Train": {"Error": "States.TaskFailed", "Cause": '{"FailureReason": "AlgorithmError: diverged"}'}},
    }
    out = fn.mark_failed({"state": state}, LambdaContext())
    assert (out["run_id"], out["run_status"], out["error"]) == (world["run"].run_id, "FAILED", "States.TaskFailed")
    run = world["svc"].get_run(ALICE, "wine", world["run"].run_id)
    assert run.failure.step == "Train" and "diverged" in run.failure.cause


def test_mark_failed_before_the_run_exists_records_nothing(fn: ModuleType, world: dict[str, Any]) -> None:
    state = {"project": "wine", "failed": {"PrepareTraining": {"Error": "JobCodeMissing", "Cause": "publish it"}}}
    out = fn.mark_failed({"state": state}, LambdaContext())
    assert out == {
        "project": "wine",
        "run_id": None,
        "run_status": None,
        "version": None,
        "version_status": None,
        "error": "JobCodeMissing",
    }
    assert world["svc"].get_run(ALICE, "wine", world["run"].run_id).status is RunStatus.PENDING


def test_a_failed_prepare_training_of_an_api_started_run_marks_that_run(fn: ModuleType, world: dict[str, Any]) -> None:
    """An execution started for a recorded run ({"project", "run_id"}) that fails before
    PrepareTraining returned: the run comes from the execution input."""
    run_id = world["run"].run_id
    state = {
        "project": "wine",
        "run_id": run_id,
        "failed": {"PrepareTraining": {"Error": "JobCodeMissing", "Cause": "x"}},
    }
    out = fn.mark_failed({"state": state}, LambdaContext())
    assert (out["run_id"], out["run_status"]) == (run_id, "FAILED")
    assert world["svc"].get_run(ALICE, "wine", run_id).failure.step == "PrepareTraining"


def test_a_failed_jobs_description_becomes_a_readable_cause(fn: ModuleType, world: dict[str, Any]) -> None:
    description = {
        "TrainingJobName": "wine-abc",
        "TrainingJobStatus": "Failed",
        "FailureReason": "AlgorithmError: Training diverged: the training loss became nan in epoch 3",
        "HyperParameters": {"learning_rate": "100"},
    }
    state = {
        "project": "wine",
        "run_id": world["run"].run_id,  # an API-started run: the id is in the input
        "failed": {"Train": {"Error": "States.TaskFailed", "Cause": json.dumps(description)}},
    }
    out = fn.mark_failed({"state": state}, LambdaContext())
    assert out["run_id"] == world["run"].run_id and out["run_status"] == "FAILED"
    failure = world["svc"].get_run(ALICE, "wine", world["run"].run_id).failure
    assert (
        failure.cause == "wine-abc Failed: AlgorithmError: Training diverged: the training loss became nan in epoch 3"
    )


def test_mark_failed_leaves_a_run_another_execution_runs_alone(fn: ModuleType, world: dict[str, Any]) -> None:
    """A second execution started by hand for a run that is already running fails in
    PrepareTraining (409): its MarkFailed must not fail the run the first execution is training."""
    svc: RegistryService = world["svc"]
    run_id = world["run"].run_id
    machine = "arn:aws:states:us-east-1:123456789012:execution:lepton-dev-lifecycle"
    svc.begin_run(ALICE, "wine", run_id, f"{machine}:wine-{run_id}")
    state = {
        "project": "wine",
        "run_id": run_id,
        "failed": {"PrepareTraining": {"Error": "IllegalTransition", "Cause": f"run {run_id} is RUNNING"}},
    }
    out = fn.mark_failed({"state": state, "execution_arn": f"{machine}:by-hand"}, LambdaContext())
    assert (out["run_id"], out["run_status"], out["error"]) == (run_id, "RUNNING", "IllegalTransition")
    assert svc.get_run(ALICE, "wine", run_id).failure is None
    # the execution that runs it does fail it
    state["failed"] = {"Train": {"Error": "States.TaskFailed", "Cause": "{}"}}
    out = fn.mark_failed({"state": state, "execution_arn": f"{machine}:wine-{run_id}"}, LambdaContext())
    assert out["run_status"] == "FAILED"
    assert svc.get_run(ALICE, "wine", run_id).failure.step == "Train"


MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:lepton-dev-lifecycle"


def status_change(
    status: str, name: str, start: dict[str, Any], start_ms: int = 1796634000123, stop_ms: int = 1796634843456
) -> dict[str, Any]:
    """The sample "Step Functions Execution Status Change" event for another execution."""
    event = sample("execution_aborted.json")
    arn = MACHINE.replace(":stateMachine:", ":execution:") + f":{name}"
    event["resources"] = [arn]
    event["detail"].update(
        executionArn=arn, name=name, status=status, startDate=start_ms, stopDate=stop_ms, input=json.dumps(start)
    )
    return event


def audit_actions(svc: RegistryService) -> list[str]:
    return [e.action for e in svc.audit_page(ALICE, "wine", 100, None).items]


def test_an_aborted_execution_stops_the_run_it_was_running(fn: ModuleType, world: dict[str, Any]) -> None:
    """Stopped in the console while it trained: the run is STOPPED with ExecutionAborted, once."""
    svc: RegistryService = world["svc"]
    run_id = world["run"].run_id
    event = status_change("ABORTED", f"wine-{run_id}", {"project": "wine", "run_id": run_id})
    arn = event["detail"]["executionArn"]
    svc.begin_run(ALICE, "wine", run_id, arn)
    out = fn.execution_ended(event, LambdaContext())
    assert (out["project"], out["run_id"], out["run_status"], out["closed"]) == ("wine", run_id, "STOPPED", True)
    run = svc.get_run(ALICE, "wine", run_id)
    assert (run.status, run.execution_arn) == (RunStatus.STOPPED, arn)
    assert run.failure.error == "ExecutionAborted" and run.failure.step is None
    assert (
        run.failure.cause == f"execution {arn} ended ABORTED at 2026-12-07T09:14:03.456000+00:00 before its run ended"
    )
    assert audit_actions(svc)[0] == "run.stopped"
    entries = len(audit_actions(svc))
    # EventBridge may deliver an event twice: nothing more is recorded
    again = fn.execution_ended(event, LambdaContext())
    assert (again["run_status"], again["closed"]) == ("STOPPED", False) and len(audit_actions(svc)) == entries


def test_an_ended_run_and_a_run_another_execution_runs_are_left_alone(fn: ModuleType, world: dict[str, Any]) -> None:
    svc: RegistryService = world["svc"]
    run_id = world["run"].run_id
    start = {"project": "wine", "run_id": run_id}
    own = status_change("FAILED", f"wine-{run_id}", start)
    svc.begin_run(ALICE, "wine", run_id, own["detail"]["executionArn"])
    # a duplicate started by hand, which PrepareTraining refused, ends FAILED: not its run
    foreign = fn.execution_ended(status_change("FAILED", "by-hand", start), LambdaContext())
    assert (foreign["run_status"], foreign["closed"]) == ("RUNNING", False)
    # the run's own execution failed in Train, and MarkFailed recorded it: the FAILED event changes nothing
    state = {"project": "wine", "run_id": run_id, "failed": {"Train": {"Error": "States.TaskFailed", "Cause": "{}"}}}
    fn.mark_failed({"state": state, "execution_arn": own["detail"]["executionArn"]}, LambdaContext())
    entries = len(audit_actions(svc))
    out = fn.execution_ended(own, LambdaContext())
    assert (out["run_status"], out["closed"]) == ("FAILED", False)
    assert svc.get_run(ALICE, "wine", run_id).failure.step == "Train"
    assert len(audit_actions(svc)) == entries


def test_a_failed_execution_whose_mark_failed_was_lost_fails_the_run(fn: ModuleType, world: dict[str, Any]) -> None:
    svc: RegistryService = world["svc"]
    run_id = world["run"].run_id
    event = status_change("FAILED", f"wine-{run_id}", {"project": "wine", "run_id": run_id})
    svc.begin_run(ALICE, "wine", run_id, event["detail"]["executionArn"])
    out = fn.execution_ended(event, LambdaContext())
    assert (out["run_status"], out["closed"]) == ("FAILED", True)
    assert svc.get_run(ALICE, "wine", run_id).failure.error == "ExecutionFailed"


def test_a_pending_run_is_closed_only_by_the_execution_started_for_it(fn: ModuleType, world: dict[str, Any]) -> None:
    """The API's execution (named <project>-<run_id>) stopped before PrepareTraining began the run:
    that name cannot be started again, so the run is STOPPED. An execution of another name is not its."""
    svc: RegistryService = world["svc"]
    run_id = world["run"].run_id
    start = {"project": "wine", "run_id": run_id}
    other = fn.execution_ended(status_change("ABORTED", "by-hand", start), LambdaContext())
    assert (other["run_status"], other["closed"]) == ("PENDING", False)
    event = status_change("ABORTED", f"wine-{run_id}", start)
    out = fn.execution_ended(event, LambdaContext())
    assert (out["run_status"], out["closed"]) == ("STOPPED", True)
    run = svc.get_run(ALICE, "wine", run_id)
    assert run.execution_arn == event["detail"]["executionArn"] and run.failure.error == "ExecutionAborted"


def test_a_timed_out_data_start_fails_the_run_prepare_training_recorded(fn: ModuleType, world: dict[str, Any]) -> None:
    """A data start's run is named after its execution's ARN and start (PrepareTraining sees the
    start as $$.Execution.StartTime, an ISO time, the event as epoch milliseconds): the same run."""
    from datetime import UTC, datetime

    from lepton.lifecycle import LifecycleStart, PrepareTrainingInput

    svc: RegistryService = world["svc"]
    start = {"project": "wine", "dataset_id": "ds-0123456789abcdef0123"}
    event = status_change("TIMED_OUT", "wine-ds-0123456789abcdef0123", start, start_ms=1796634000123)
    arn = event["detail"]["executionArn"]
    prepare = PrepareTrainingInput(
        start=LifecycleStart.model_validate(start),
        execution_id=arn,
        execution_started=datetime(2026, 12, 7, 9, 0, 0, 123456, tzinfo=UTC),  # 1796634000123.456 ms
    )
    svc.create_run(
        ALICE,
        "wine",
        NewRun(overrides=RunOverrides(dataset_id=start["dataset_id"])),
        run_id=prepare.run_id(),
        execution_arn=arn,
    )
    out = fn.execution_ended(event, LambdaContext())
    assert (out["run_id"], out["run_status"], out["closed"]) == (prepare.run_id(), "FAILED", True)
    assert svc.get_run(ALICE, "wine", prepare.run_id()).failure.error == "ExecutionTimedOut"


def test_executions_without_a_run_to_close(fn: ModuleType, world: dict[str, Any]) -> None:
    svc: RegistryService = world["svc"]
    entries = len(audit_actions(svc))
    run_id = world["run"].run_id
    cases = {
        # succeeded: Register ended its run
        "SUCCEEDED": status_change("SUCCEEDED", f"wine-{run_id}", {"project": "wine", "run_id": run_id}),
        # failed before PrepareTraining recorded the data start's run
        "no run": status_change("FAILED", "early", {"project": "wine", "dataset_id": "ds-0123456789abcdef0123"}),
        "no project": status_change("ABORTED", "gone", {"project": "nope", "run_id": run_id}),
        "not a lifecycle input": status_change("ABORTED", "other", {"hello": "world"}),
    }
    for case, event in cases.items():
        out = fn.execution_ended(event, LambdaContext())
        assert (out["closed"], out["run_status"]) == (False, None), case
        assert out["note"], case
    assert svc.get_run(ALICE, "wine", run_id).status is RunStatus.PENDING
    assert len(audit_actions(svc)) == entries
    with pytest.raises(ValidationError):
        fn.execution_ended({**cases["no run"], "detail": {"status": "ABORTED"}}, LambdaContext())


def test_a_failed_executions_own_error_and_cause_become_the_runs_failure() -> None:
    """What DescribeExecution says of a FAILED lifecycle execution: the Fail state's LifecycleFailed
    holds the failed step's {Error, Cause}, recorded as MarkFailed records them."""
    from lepton.lifecycle import execution_failure

    job = {"TrainingJobName": "wine-abc", "TrainingJobStatus": "Failed", "FailureReason": "AlgorithmError: diverged"}
    cause = json.dumps({"Train": {"Error": "States.TaskFailed", "Cause": json.dumps(job)}})
    failure = execution_failure({"status": "FAILED", "error": "LifecycleFailed", "cause": cause})
    assert (failure.step, failure.error, failure.cause) == (
        "Train",
        "States.TaskFailed",
        "wine-abc Failed: AlgorithmError: diverged",
    )
    other = execution_failure({"error": "States.Runtime", "cause": "An error occurred while executing the state"})
    assert (other.step, other.error, other.cause) == (
        None,
        "States.Runtime",
        "An error occurred while executing the state",
    )
    odd = execution_failure({"error": "LifecycleFailed", "cause": "not json"})
    assert (odd.step, odd.error, odd.cause) == (None, "LifecycleFailed", "not json")
    assert execution_failure(None) is None and execution_failure({"status": "FAILED"}) is None


def test_mark_failed_leaves_a_stopped_run_stopped(fn: ModuleType, world: dict[str, Any]) -> None:
    """A run stopped through the API whose execution could not be stopped: PrepareTraining (or
    Register) is refused at its next step, and the MarkFailed that follows keeps the run STOPPED."""
    from lepton.registry.models import FailureCause

    svc: RegistryService = world["svc"]
    run_id = world["run"].run_id
    arn = MACHINE.replace(":stateMachine:", ":execution:") + f":wine-{run_id}"
    stop = FailureCause(error="RunStopped", cause="wrong data")
    svc.close_run(ALICE, "wine", run_id, arn, stop, started_for=True, status=RunStatus.STOPPED)
    state = {"project": "wine", "run_id": run_id, "failed": {"PrepareTraining": {"Error": "IllegalTransition"}}}
    out = fn.mark_failed({"state": state, "execution_arn": arn}, LambdaContext())
    assert out["run_status"] == "STOPPED"
    run = svc.get_run(ALICE, "wine", run_id)
    assert (run.status, run.failure) == (RunStatus.STOPPED, stop)
