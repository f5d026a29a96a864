"""Starting a lifecycle run against the registry (moto DynamoDB in process): which run executes, on
which job code, and that a refused start leaves no run behind."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from registry_testkit import ALICE, aws_client, make_service, registration, seed_project, set_fake_aws_env

from lepton.errors import AlreadyExists, IllegalTransition, ValidationFailed
from lepton.lifecycle import JobCode, LifecycleStart, PrepareTrainingInput, start_run
from lepton.registry.commands import NewRun
from lepton.registry.dynamo import create_table
from lepton.registry.models import RunOverrides, RunStatus
from lepton.registry.service import RegistryService
from localcloud.patches.dynamodb_atomic import install as install_atomic_dynamodb

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "lepton-test")
BUCKET = "lepton-data"
CURRENT = JobCode.at(BUCKET, "a" * 64)
OLDER = "b" * 64


class Unpublished(Exception):
    pass


class FakePublishedCode:
    def __init__(self, current: JobCode | None = CURRENT, published: tuple[str, ...] = (OLDER,)) -> None:
        self._current = current
        self._published = published
        self.asked: list[str] = []

    def current(self) -> JobCode:
        if self._current is None:
            raise Unpublished("code/jobs/current.json does not exist")
        return self._current

    def version(self, code_version: str) -> JobCode:
        self.asked.append(code_version)
        current = self._current.code_version if self._current else None
        if code_version not in (*self._published, current):  # the current code is published too
            raise Unpublished(code_version)
        return JobCode.at(BUCKET, code_version)


@pytest.fixture
def svc(socket_disabled: Any) -> Iterator[RegistryService]:
    set_fake_aws_env()
    install_atomic_dynamodb()
    with mock_aws():
        create_table(aws_client("dynamodb"), "lepton-lifecycle-unit")
        yield make_service("lepton-lifecycle-unit")


def runs(svc: RegistryService) -> list[Any]:
    return svc.list_runs(ALICE, "wine", 50, None).items


EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:lepton-dev-lifecycle:wine-1"


def in_execution(start: LifecycleStart, execution_id: str = EXECUTION) -> PrepareTrainingInput:
    """PrepareTraining's event as the state machine builds it (see events/steps/prepare_training.json)."""
    return PrepareTrainingInput(start=start, execution_id=execution_id, execution_started="2026-12-07T07:12:30.123Z")


def test_a_dataset_start_creates_a_run_pinned_to_the_current_code(svc: RegistryService) -> None:
    (ds,) = seed_project(svc)
    start = in_execution(LifecycleStart(project="wine", dataset_id=ds.dataset_id))
    prepared = start_run(svc, start, FakePublishedCode(), BUCKET, "us-east-1")
    (run,) = runs(svc)
    assert prepared.run_id == run.run_id
    # it runs in this execution from the one write that recorded it
    assert (run.status, run.execution_arn) == (RunStatus.RUNNING, EXECUTION) and run.started_at == run.created_at
    created = svc.audit_page(ALICE, "wine", 100, None).items[0]
    assert (created.action, created.after["status"], created.after["execution_arn"]) == (
        "run.created",
        "RUNNING",
        EXECUTION,
    )
    assert run.code_version == CURRENT.code_version == prepared.code_version
    assert prepared.code_uri == CURRENT.files_uri
    assert prepared.hyperparameters["sagemaker_submit_directory"] == f'"{CURRENT.sourcedir_uri}"'


def test_a_run_pinned_to_an_older_code_version_trains_with_that_code(svc: RegistryService) -> None:
    (ds,) = seed_project(svc)
    run = svc.create_run(ALICE, "wine", NewRun(overrides=RunOverrides(dataset_id=ds.dataset_id, code_version=OLDER)))
    code = FakePublishedCode()
    prepared = start_run(
        svc, in_execution(LifecycleStart(project="wine", run_id=run.run_id)), code, BUCKET, "us-east-1"
    )
    assert code.asked == [OLDER]
    assert prepared.code_version == OLDER
    assert prepared.code_uri == f"s3://{BUCKET}/code/jobs/{OLDER}/files/"
    assert (
        prepared.hyperparameters["sagemaker_submit_directory"] == f'"s3://{BUCKET}/code/jobs/{OLDER}/sourcedir.tar.gz"'
    )


def test_a_branch_inherits_its_base_versions_code_and_refuses_one_that_is_not_a_job_code_version(
    svc: RegistryService,
) -> None:
    (ds,) = seed_project(svc)
    svc.register_version(ALICE, "wine", registration(ds.dataset_id, "job-1", code_version="git-1a2b3c4"))
    branch = svc.create_run(ALICE, "wine", NewRun(base_version=1, branch="wider"))
    assert branch.code_version == "git-1a2b3c4"
    with pytest.raises(ValidationFailed, match="code_version 'git-1a2b3c4'") as refused:
        start_run(
            svc,
            in_execution(LifecycleStart(project="wine", run_id=branch.run_id)),
            FakePublishedCode(),
            BUCKET,
            "us-east-1",
        )
    assert refused.value.details == {"field": "code_version"}


def test_a_start_refused_for_unpublished_code_leaves_no_run(svc: RegistryService) -> None:
    (ds,) = seed_project(svc)
    with pytest.raises(Unpublished):
        start = in_execution(LifecycleStart(project="wine", dataset_id=ds.dataset_id))
        start_run(svc, start, FakePublishedCode(current=None), BUCKET, "us-east-1")
    assert runs(svc) == []


def test_a_retried_dataset_start_returns_the_run_its_first_attempt_recorded(svc: RegistryService) -> None:
    """A Lambda service error on the way back makes the state machine retry PrepareTraining after
    it recorded the run: the retry gets the same run, and the registry holds one."""
    (ds,) = seed_project(svc)
    start = LifecycleStart(project="wine", dataset_id=ds.dataset_id)
    first = start_run(svc, in_execution(start), FakePublishedCode(), BUCKET, "us-east-1")
    audit_after_first = svc.audit_page(ALICE, "wine", 100, None).items
    retried = start_run(svc, in_execution(start), FakePublishedCode(), BUCKET, "us-east-1")
    assert retried == first
    (run,) = runs(svc)
    assert run.run_id == first.run_id
    assert svc.audit_page(ALICE, "wine", 100, None).items == audit_after_first  # the retry recorded nothing
    # another execution with the same input is another run
    other = start_run(svc, in_execution(start, EXECUTION[:-1] + "2"), FakePublishedCode(), BUCKET, "us-east-1")
    assert other.run_id != first.run_id and len(runs(svc)) == 2


def test_a_retry_after_newer_code_was_published_keeps_the_recorded_runs_code(svc: RegistryService) -> None:
    """The job code is republished between PrepareTraining's first attempt (which recorded the run)
    and its retry: the retry executes the run it recorded, on the code that run pins."""
    (ds,) = seed_project(svc)
    start = in_execution(LifecycleStart(project="wine", dataset_id=ds.dataset_id))
    first = start_run(svc, start, FakePublishedCode(), BUCKET, "us-east-1")
    newer = FakePublishedCode(current=JobCode.at(BUCKET, "c" * 64), published=(CURRENT.code_version,))
    retried = start_run(svc, start, newer, BUCKET, "us-east-1")
    assert retried == first and retried.code_version == CURRENT.code_version
    assert newer.asked == [CURRENT.code_version]
    (run,) = runs(svc)
    assert (run.status, run.code_version) == (RunStatus.RUNNING, CURRENT.code_version)


def test_an_api_started_run_runs_in_one_execution_only(svc: RegistryService) -> None:
    """A recorded run begins to run in the first execution that prepares it; a retry of that
    execution's PrepareTraining is answered with the same jobs, another execution of the same run
    (started by hand from the console) is refused with 409 naming the one that runs it."""
    (ds,) = seed_project(svc)
    run = svc.create_run(ALICE, "wine", NewRun(overrides=RunOverrides(dataset_id=ds.dataset_id)))
    assert run.status is RunStatus.PENDING and run.execution_arn is None
    start = LifecycleStart(project="wine", run_id=run.run_id)
    first = start_run(svc, in_execution(start), FakePublishedCode(), BUCKET, "us-east-1")
    audit = svc.audit_page(ALICE, "wine", 100, None).items
    assert (audit[0].action, audit[0].after) == ("run.started", {"status": "RUNNING", "execution_arn": EXECUTION})
    assert start_run(svc, in_execution(start), FakePublishedCode(), BUCKET, "us-east-1") == first
    assert svc.audit_page(ALICE, "wine", 100, None).items == audit  # the retry recorded nothing
    other = EXECUTION[:-1] + "2"
    with pytest.raises(IllegalTransition, match=f"RUNNING \\(execution {EXECUTION}\\)") as refused:
        start_run(svc, in_execution(start, other), FakePublishedCode(), BUCKET, "us-east-1")
    assert refused.value.status == 409
    assert refused.value.details == {"run_id": run.run_id, "current_status": "RUNNING", "execution_arn": EXECUTION}
    assert svc.get_run(ALICE, "wine", run.run_id).execution_arn == EXECUTION


def test_a_run_id_recorded_from_another_command_is_a_conflict(svc: RegistryService) -> None:
    (ds,) = seed_project(svc)
    run = svc.create_run(
        ALICE, "wine", NewRun(overrides=RunOverrides(dataset_id=ds.dataset_id)), run_id="run-0123456789"
    )
    assert (
        svc.create_run(ALICE, "wine", NewRun(overrides=RunOverrides(dataset_id=ds.dataset_id)), run_id="run-0123456789")
        == run
    )
    with pytest.raises(AlreadyExists, match="run-0123456789") as refused:
        svc.create_run(ALICE, "wine", NewRun(base_version=None, branch="other"), run_id="run-0123456789")
    assert refused.value.status == 409 and refused.value.details["run_id"] == "run-0123456789"
    assert len(runs(svc)) == 1


def test_the_sample_event_is_what_prepare_training_parses() -> None:
    sample = json.loads((Path(__file__).parents[3] / "events" / "steps" / "prepare_training.json").read_text())
    event = PrepareTrainingInput.model_validate(sample)
    assert event.start.dataset_id == "ds-0123456789abcdef0123"
    # 2026-12-07T07:12:30.123Z in ms since the epoch, then the first 10 hex digits of the id's sha256
    digest = hashlib.sha256(sample["execution_id"].encode()).hexdigest()[:10]
    assert event.run_id() == f"run-{1796627550123:x}{digest}"


def test_a_run_recorded_after_its_execution_was_stopped_is_closed_here(svc: RegistryService) -> None:
    """StopExecution lets PrepareTraining finish; ExecutionEnded may have handled the ABORTED event
    before the run existed. PrepareTraining describes its execution after recording the run, and
    closes the run itself when the execution has ended."""
    from datetime import UTC, datetime

    (ds,) = seed_project(svc)
    start = in_execution(LifecycleStart(project="wine", dataset_id=ds.dataset_id))
    asked: list[str] = []

    def stopped(arn: str) -> dict[str, Any]:
        asked.append(arn)
        return {"executionArn": arn, "status": "ABORTED", "stopDate": datetime(2026, 12, 7, 7, 12, 31, tzinfo=UTC)}

    prepared = start_run(svc, start, FakePublishedCode(), BUCKET, "us-east-1", stopped)
    assert asked == [EXECUTION]
    run = svc.get_run(ALICE, "wine", prepared.run_id)
    assert (run.status, run.execution_arn, run.failure.error) == (RunStatus.STOPPED, EXECUTION, "ExecutionAborted")
    assert run.failure.cause == f"execution {EXECUTION} ended ABORTED at 2026-12-07T07:12:31+00:00 before its run ended"
    assert [e.action for e in svc.audit_page(ALICE, "wine", 2, None).items] == ["run.stopped", "run.created"]


def test_a_run_whose_execution_still_runs_or_cannot_be_described_stays_running(svc: RegistryService) -> None:
    (ds,) = seed_project(svc)
    start = LifecycleStart(project="wine", dataset_id=ds.dataset_id)
    for n, describe in enumerate([lambda arn: {"executionArn": arn, "status": "RUNNING"}, lambda arn: None]):
        prepared = start_run(
            svc, in_execution(start, f"{EXECUTION}-{n}"), FakePublishedCode(), BUCKET, "us-east-1", describe
        )
        assert svc.get_run(ALICE, "wine", prepared.run_id).status is RunStatus.RUNNING
