"""Shared test helpers for the registry and its API.

Imported as `registry_testkit`: the conftests that need it put tests/unit/registry on sys.path."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from lepton.data.models import ContractSource, DatasetVersion, SourceObject, SplitRows
from lepton.events.base import LeptonEvent
from lepton.registry.commands import NewProject, RegisterVersion
from lepton.registry.dynamo import DynamoRegistryRepository, bind
from lepton.registry.models import VersionStatus
from lepton.registry.service import Actor, RegistryService, RetryPolicy

ROOT = Path(__file__).resolve().parents[3]
ACCOUNT = "123456789012"
ALICE = Actor(f"arn:aws:iam::{ACCOUNT}:user/alice")  # creates projects: admin
BOB = Actor(f"arn:aws:iam::{ACCOUNT}:user/bob")
CAROL = Actor(f"arn:aws:iam::{ACCOUNT}:user/carol")
MALLORY = Actor(f"arn:aws:iam::{ACCOUNT}:user/mallory")  # never a member
SYSTEM = Actor("lepton:lifecycle", system=True)
INGEST = Actor("lepton:ingest", system=True)

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@lru_cache(maxsize=8)
def aws_client(service: str, endpoint_url: str | None = None) -> Any:
    """boto3 clients are slow to create (~0.1 s): tests share one per service and endpoint.
    moto intercepts them whenever a mock is active (moto is imported before they are made)."""
    import boto3

    return boto3.client(service, region_name="us-east-1", endpoint_url=endpoint_url)


def set_fake_aws_env() -> None:
    for key, value in FAKE_AWS_ENV.items():
        os.environ[key] = value
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        os.environ.pop(key, None)


class StepClock:
    """A clock that advances 1 ms per reading: deterministic, strictly increasing timestamps."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            self.now += timedelta(milliseconds=1)
            return self.now


class RecordingPublisher:
    def __init__(self) -> None:
        self.events: list[LeptonEvent] = []
        self._lock = threading.Lock()

    def publish(self, events: Sequence[LeptonEvent]) -> None:
        with self._lock:
            self.events.extend(events)

    def types(self) -> list[str]:
        return [e.detail_type for e in self.events]


def make_service(
    table: str,
    *,
    host: str | None = None,
    publisher: Any = None,
    clock: Any = None,
    retry: RetryPolicy | None = None,
    artifacts: Any = None,
) -> RegistryService:
    return RegistryService(
        DynamoRegistryRepository(table, host=host, region="us-east-1"),
        publisher,
        clock=clock or StepClock(),
        retry=retry,
        artifacts=artifacts,
    )


def dataset(project: str, n: int = 0) -> DatasetVersion:
    digest = hashlib.sha256(f"{project}/{n}".encode()).hexdigest()
    return DatasetVersion(
        project=project,
        dataset_id=f"ds-{digest[:20]}",
        content_sha256=digest,
        schema_hash="b" * 64,
        rows=SplitRows(train=70, validation=15, test=15),
        rows_in=100,
        source=SourceObject(bucket="lepton-data", key=f"incoming/{project}/{n}.csv", size=1000),
        curated_prefix=f"s3://lepton-data/curated/{project}/ds-{digest[:20]}/",
        contract_source=ContractSource.DECLARED,
    )


def registration(dataset_id: str, job: str, **overrides: Any) -> RegisterVersion:
    fields: dict[str, Any] = {
        "artifact_uri": f"s3://lepton-models/{job}/output/model.tar.gz",
        "artifact_sha256": "c" * 64,
        "dataset_id": dataset_id,
        "training_job": job,
        "code_version": "git-1a2b3c4",
        "hyperparameters": {"epochs": 10, "learning_rate": 0.01, "optimizer": "adam"},
        "metrics": {"validation:accuracy": 0.9, "validation:loss": 0.3},
    }
    fields.update(overrides)
    return RegisterVersion(**fields)


def seed_project(svc: RegistryService, name: str = "wine", *, datasets: int = 1) -> list[DatasetVersion]:
    svc.create_project(ALICE, NewProject(name=name, description="test project"))
    return [svc.register_dataset(INGEST, dataset(name, i + 1)) for i in range(datasets)]


def deploying(svc: RegistryService, project: str, number: int) -> None:
    """REGISTERED -> APPROVED -> DEPLOYING (ALICE is admin)."""
    svc.approve(ALICE, project, number, "looks good")
    svc.transition(ALICE, project, number, VersionStatus.DEPLOYING, "deploying")


class DynamoCallCounter:
    """Counts DynamoDB API calls (botocore `before-call`) and HTTP attempts (`before-send`) made
    through the registry's client for one table."""

    def __init__(self, table: str, host: str | None = None) -> None:
        self.client = bind(table, host, "us-east-1").connection.connection.client
        self.calls: Counter[str] = Counter()
        self.sends = 0
        self._lock = threading.Lock()

    def _on_call(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1

    def _on_send(self, **_: Any) -> None:
        with self._lock:
            self.sends += 1

    @contextmanager
    def counting(self) -> Iterator[DynamoCallCounter]:
        self.calls.clear()
        self.sends = 0
        events = self.client.meta.events
        events.register("before-call.dynamodb.*", self._on_call, unique_id="lepton-test-count-call")
        events.register("before-send.dynamodb.*", self._on_send, unique_id="lepton-test-count-send")
        try:
            yield self
        finally:
            events.unregister("before-call.dynamodb.*", unique_id="lepton-test-count-call")
            events.unregister("before-send.dynamodb.*", unique_id="lepton-test-count-send")


def proxy_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    query: dict[str, str] | None = None,
    caller: Actor | str | None = ALICE,
) -> dict[str, Any]:
    """An API Gateway REST proxy event as AWS (and the local front door) builds it."""
    event = json.loads((ROOT / "events" / "api" / "get_version.json").read_text())
    arn = caller.principal if isinstance(caller, Actor) else caller
    event.update(
        path=path,
        httpMethod=method,
        queryStringParameters=query or None,
        multiValueQueryStringParameters={k: [v] for k, v in query.items()} if query else None,
        pathParameters={"proxy": path.lstrip("/")},
        body=body if body is None or isinstance(body, str) else json.dumps(body),
    )
    event["requestContext"] = {
        **event["requestContext"],
        "httpMethod": method,
        "path": f"/dev{path}",
        "identity": {**event["requestContext"]["identity"], "userArn": arn},
    }
    return event


class LambdaContext:
    function_name = "lepton-api"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:lepton-api"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    log_group_name = "/aws/lambda/lepton-api"
    log_stream_name = "stream"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def table_snapshot(client: Any, table: str) -> list[dict[str, Any]]:
    """Every item of the table, sorted (to prove a failed request wrote nothing)."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = client.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))
