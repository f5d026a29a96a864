"""Starting a lifecycle run against the registry (moto DynamoDB in process): which run executes, on
which job code, and that a refused start leaves no run behind."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws
from registry_testkit import ALICE, aws_client, make_service, registration, seed_project, set_fake_aws_env

from lepton.errors import ValidationFailed
from lepton.lifecycle import JobCode, LifecycleStart, start_run
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
        if code_version not in self._published:
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


def test_a_dataset_start_creates_a_run_pinned_to_the_current_code(svc: RegistryService) -> None:
    (ds,) = seed_project(svc)
    prepared = start_run(svc, LifecycleStart(project="wine", dataset_id=ds.dataset_id), FakePublishedCode(),
                         BUCKET, "us-east-1")  # fmt: skip
    (run,) = runs(svc)
    assert prepared.run_id == run.run_id and run.status is RunStatus.PENDING
    assert run.code_version == CURRENT.code_version == prepared.code_version
    assert prepared.code_uri == CURRENT.files_uri
    assert prepared.hyperparameters["sagemaker_submit_directory"] == f'"{CURRENT.sourcedir_uri}"'


def test_a_run_pinned_to_an_older_code_version_trains_with_that_code(svc: RegistryService) -> None:
    (ds,) = seed_project(svc)
    run = svc.create_run(ALICE, "wine", NewRun(overrides=RunOverrides(dataset_id=ds.dataset_id, code_version=OLDER)))
    code = FakePublishedCode()
    prepared = start_run(svc, LifecycleStart(project="wine", run_id=run.run_id), code, BUCKET, "us-east-1")
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
        start_run(svc, LifecycleStart(project="wine", run_id=branch.run_id), FakePublishedCode(), BUCKET, "us-east-1")
    assert refused.value.details == {"field": "code_version"}


def test_a_start_refused_for_unpublished_code_leaves_no_run(svc: RegistryService) -> None:
    (ds,) = seed_project(svc)
    with pytest.raises(Unpublished):
        start_run(svc, LifecycleStart(project="wine", dataset_id=ds.dataset_id), FakePublishedCode(current=None),
                  BUCKET, "us-east-1")  # fmt: skip
    assert runs(svc) == []
