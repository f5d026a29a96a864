"""API unit tests: the real handler (functions/api/app.py) over moto in-process, no network."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "lepton-test")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Lepton")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "registry"))

import importlib.util
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import moto  # noqa: F401
import pytest
from moto import mock_aws
from registry_testkit import (
    ALICE,
    ROOT,
    LambdaContext,
    make_service,
    proxy_event,
    set_fake_aws_env,
    table_snapshot,
)

from lepton.registry.dynamo import create_table
from lepton.registry.models import utcnow
from lepton.registry.service import Actor, RegistryService
from lepton.registry.wiring import build_service
from localcloud.patches.dynamodb_atomic import install as install_atomic_dynamodb

TABLE = "lepton-registry-api"


def _load_handler() -> Any:
    spec = importlib.util.spec_from_file_location("lepton_fn_api", ROOT / "functions" / "api" / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


HANDLER = _load_handler()


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def error(self) -> str | None:
        return self.body.get("error") if isinstance(self.body, dict) else None

    def fields(self) -> list[str]:
        details = self.body.get("details") or {} if isinstance(self.body, dict) else {}
        return [f["field"] for f in details.get("fields", [])]


@dataclass
class Api:
    ddb: Any
    table: str
    svc: RegistryService

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, str] | None = None,
        caller: Actor | str | None = ALICE,
    ) -> Reply:
        event = proxy_event(method, path, body=body, query=query, caller=caller)
        raw = HANDLER(event, LambdaContext())
        text = raw.get("body") or ""
        try:
            parsed: Any = json.loads(text) if text else None
        except ValueError:
            parsed = text
        headers = {k: v[-1] for k, v in (raw.get("multiValueHeaders") or {}).items() if v}
        headers.update(raw.get("headers") or {})
        return Reply(raw["statusCode"], parsed, headers)

    def snapshot(self) -> list[dict[str, Any]]:
        return table_snapshot(self.ddb, self.table)


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
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        create_table(ddb, TABLE)
        yield Api(ddb=ddb, table=TABLE, svc=make_service(TABLE, clock=utcnow))
    build_service.cache_clear()
