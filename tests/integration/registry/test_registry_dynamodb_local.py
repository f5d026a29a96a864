"""localcloud.dynamodb_local: the official DynamoDB Local as a persistent store."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import boto3
import pytest
from registry_testkit import ALICE, make_service, set_fake_aws_env

from lepton.registry.commands import NewProject
from lepton.registry.dynamo import create_table
from localcloud.dynamodb_local import DynamoDBLocal, ensure_installed, find_jar

pytestmark = [pytest.mark.dynamodb_local, pytest.mark.timeout(180)]


def test_the_registry_survives_a_restart(tmp_path: Path) -> None:
    set_fake_aws_env()
    assert ensure_installed() == find_jar()
    db = tmp_path / "dynamodb"
    with DynamoDBLocal(db_path=db) as first:
        client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=first.endpoint_url)
        create_table(client, "lepton-registry-persist")
        make_service("lepton-registry-persist", host=first.endpoint_url).create_project(ALICE, NewProject(name="wine"))
        pid = first._process.pid if first._process else None
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped, process group included
    assert any(db.iterdir())
    with DynamoDBLocal(db_path=db) as second:  # another port, the same database
        project = make_service("lepton-registry-persist", host=second.endpoint_url).get_project(ALICE, "wine")
        assert project.audit_seq == 1 and project.members == {ALICE.principal: "admin"}


def test_stop_is_idempotent_and_survives_a_dead_process() -> None:
    server = DynamoDBLocal().start()
    assert server.running
    assert server._process is not None
    os.killpg(server._process.pid, signal.SIGKILL)
    server._process.wait(timeout=10)
    server.stop()
    server.stop()
    assert not server.running
