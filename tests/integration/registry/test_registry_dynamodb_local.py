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
from localcloud.dynamodb_local import SHARED_DB_FILE, DynamoDBLocal, ensure_installed, find_jar, journal_mode

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


def test_an_acknowledged_write_survives_a_killed_process_in_write_ahead_log_mode(tmp_path: Path) -> None:
    """A database DynamoDB Local made with its rollback journal is moved to WAL mode at the next
    start, keeping its data; a write it acknowledged then survives SIGKILL (no clean shutdown, no
    checkpoint: the write is only in the log) and the next start reads it."""
    set_fake_aws_env()
    db = tmp_path / "dynamodb"
    with DynamoDBLocal(db_path=db, write_ahead_log=False) as old:
        client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=old.endpoint_url)
        create_table(client, "lepton-registry-wal")
        make_service("lepton-registry-wal", host=old.endpoint_url).create_project(ALICE, NewProject(name="old"))
    assert journal_mode(db / SHARED_DB_FILE) == "delete"

    server = DynamoDBLocal(db_path=db).start()
    assert server._process is not None
    assert journal_mode(db / SHARED_DB_FILE) == "wal"
    svc = make_service("lepton-registry-wal", host=server.endpoint_url)
    assert svc.get_project(ALICE, "old").created_by == ALICE.principal
    svc.create_project(ALICE, NewProject(name="acknowledged"))
    os.killpg(server._process.pid, signal.SIGKILL)
    server._process.wait(timeout=10)
    server.stop()
    assert (db / f"{SHARED_DB_FILE}-wal").stat().st_size > 0

    with DynamoDBLocal(db_path=db) as again:
        svc = make_service("lepton-registry-wal", host=again.endpoint_url)
        assert svc.get_project(ALICE, "acknowledged").audit_seq == 1
        assert svc.get_project(ALICE, "old").audit_seq == 1
