"""Helpers of the API tests: the real Lambda handler, a tiny client over proxy events."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from typing import Any

from registry_testkit import ALICE, ROOT, LambdaContext, proxy_event, table_snapshot

from lepton.registry.service import Actor, RegistryService

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
    sfn: Any = None  # moto's Step Functions, holding the lifecycle state machine the API starts
    state_machine: str = ""

    def executions(self) -> list[dict[str, Any]]:
        """The lifecycle executions started so far: name and input."""
        listed = self.sfn.list_executions(stateMachineArn=self.state_machine)["executions"]
        described = [self.sfn.describe_execution(executionArn=e["executionArn"]) for e in listed]
        return [{"name": d["name"], "input": json.loads(d["input"])} for d in described]

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
