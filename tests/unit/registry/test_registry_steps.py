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
