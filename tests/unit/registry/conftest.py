"""Registry unit tests: no network (pytest-socket), DynamoDB is moto in-process."""

from __future__ import annotations

import os

# powertools reads these when lepton.observability is first imported
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "lepton-test")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Lepton")

from collections.abc import Iterator
from typing import Any

import moto  # noqa: F401  (imported before any botocore client is created, so moto can intercept it)
import pytest
from moto import mock_aws
from registry_testkit import RecordingPublisher, aws_client, make_service, set_fake_aws_env

from lepton.registry.dynamo import create_table
from lepton.registry.service import RegistryService
from localcloud.patches.dynamodb_atomic import install as install_atomic_dynamodb

TABLE = "lepton-registry-unit"


@pytest.fixture(autouse=True)
def _no_network(socket_disabled: Any) -> Iterator[None]:
    yield


@pytest.fixture(autouse=True)
def _fresh_metrics() -> Iterator[None]:
    """Metrics are process-wide: what one test adds must not be flushed by another's handler."""
    from lepton.observability import metrics

    metrics.namespace = metrics.namespace or "Lepton"
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    set_fake_aws_env()
    install_atomic_dynamodb()
    with mock_aws():
        yield


@pytest.fixture
def ddb(aws: None) -> Any:
    return aws_client("dynamodb")


@pytest.fixture
def table(ddb: Any) -> str:
    create_table(ddb, TABLE)
    return TABLE


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def svc(table: str, publisher: RecordingPublisher) -> RegistryService:
    return make_service(table, publisher=publisher)
