"""API unit tests: the real handler (functions/api/app.py) over moto in-process, no network."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "lepton-test")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Lepton")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "registry"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from collections.abc import Iterator
from typing import Any

import moto  # noqa: F401
import pytest
from api_testkit import TABLE, Api
from moto import mock_aws
from registry_testkit import aws_client, make_service, set_fake_aws_env

from lepton.api.deps import _lifecycle
from lepton.registry.dynamo import create_table
from lepton.registry.models import utcnow
from lepton.registry.wiring import build_service
from localcloud.patches.dynamodb_atomic import install as install_atomic_dynamodb


@pytest.fixture(autouse=True)
def _no_network(socket_disabled: Any) -> Iterator[None]:
    yield


@pytest.fixture(autouse=True)
def _fresh_metrics() -> Iterator[None]:
    from lepton.observability import metrics

    metrics.namespace = metrics.namespace or "Lepton"
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    set_fake_aws_env()
    install_atomic_dynamodb()
    monkeypatch.setenv("REGISTRY_TABLE", TABLE)
    monkeypatch.setenv("VERIFY_ARTIFACTS", "false")
    monkeypatch.delenv("EVENT_BUS_NAME", raising=False)
    build_service.cache_clear()
    _lifecycle.cache_clear()
    # moto records the executions the API starts without running them (said explicitly: the local
    # runtime turns execution on for its own run): the tests read them back
    with mock_aws(config={"stepfunctions": {"execute_state_machine": False}}):
        ddb = aws_client("dynamodb")
        create_table(ddb, TABLE)
        sfn = aws_client("stepfunctions")
        definition = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})
        machine = sfn.create_state_machine(
            name="lepton-test-lifecycle", definition=definition, roleArn="arn:aws:iam::123456789012:role/lifecycle"
        )["stateMachineArn"]
        monkeypatch.setenv("LIFECYCLE_STATE_MACHINE_ARN", machine)
        yield Api(ddb=ddb, table=TABLE, svc=make_service(TABLE, clock=utcnow), sfn=sfn, state_machine=machine)
    build_service.cache_clear()
    _lifecycle.cache_clear()
