"""The ingest function on moto in-process: a data bucket, the idempotency table, an EventBridge bus
whose events land in an SQS queue, and a lifecycle state machine. The registry is the in-memory fake
(the DynamoDB adapter is the registry engineer's; the lead's template-driven tests use it).

Used by the integration tests (fixture `aws`) and by bench/ingest_bench.py (the handler run)."""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote_plus

ROOT = Path(__file__).resolve().parents[3]
FUNCTION_DIR = ROOT / "functions" / "ingest"
for extra in (FUNCTION_DIR, ROOT / "shared", ROOT / "tests" / "unit" / "ingest"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

# powertools reads these when lepton.observability is first imported, which may be now
for _name, _value in (("POWERTOOLS_SERVICE_NAME", "ingest"), ("POWERTOOLS_METRICS_NAMESPACE", "Lepton")):
    os.environ.setdefault(_name, _value)

import boto3  # noqa: E402
from ingest_fakes import FakeRegistry  # noqa: E402
from moto import mock_aws  # noqa: E402

REGION = "us-east-1"
BUCKET = "lepton-data-test"
IDEMPOTENCY_TABLE = "lepton-idempotency-test"
BUS = "lepton-test"
STATE_MACHINE = "lepton-lifecycle-test"
SAMPLE_EVENT = ROOT / "events" / "s3" / "object-created.json"
_sequence = itertools.count(1)

ENVIRONMENT = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "DATA_BUCKET": BUCKET,
    "REGISTRY_TABLE": "lepton-registry-test",
    "IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE,
    "EVENT_BUS_NAME": BUS,
    "POWERTOOLS_SERVICE_NAME": "ingest",
    "POWERTOOLS_METRICS_NAMESPACE": "Lepton",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "AWS_LAMBDA_FUNCTION_NAME": "lepton-ingest-test",
}


@dataclass
class LambdaContext:
    function_name: str = "lepton-ingest-test"
    memory_limit_in_mb: int = 10240
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:lepton-ingest-test"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    function_version: str = "$LATEST"
    deadline: float = field(default_factory=lambda: time.time() + 900)

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - time.time()) * 1000)


def load_handler_module() -> ModuleType:
    """functions/ingest/app.py under a name of its own (other functions also have an app.py)."""
    for name in ("wiring", "ingest_entry", "ingest_adapters"):
        module = sys.modules.get(name)
        if module is not None and not str(getattr(module, "__file__", "")).startswith(str(FUNCTION_DIR)):
            del sys.modules[name]  # another function's module of the same name
    spec = importlib.util.spec_from_file_location("ingest_app", FUNCTION_DIR / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Aws:
    s3: Any
    sfn: Any
    sqs: Any
    dynamodb: Any
    queue_url: str
    state_machine_arn: str
    registry: FakeRegistry
    app: ModuleType

    def upload(self, key: str, body: bytes) -> dict[str, Any]:
        """Put an object and return the S3 notification AWS would send for it."""
        response = self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        event = json.loads(SAMPLE_EVENT.read_text())
        record = event["Records"][0]
        record["s3"]["bucket"].update(name=BUCKET, arn=f"arn:aws:s3:::{BUCKET}")
        record["s3"]["object"] = {
            "key": quote_plus(key, safe="/"),
            "size": len(body),
            "eTag": response["ETag"].strip('"'),
            "sequencer": f"{next(_sequence):018X}",
        }
        if response.get("VersionId"):
            record["s3"]["object"]["versionId"] = response["VersionId"]
        return event

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.app.handler(event, LambdaContext())
        return result

    def keys(self, prefix: str) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        body: bytes = self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return body

    def json(self, key: str) -> Any:
        return json.loads(self.read(key))

    def executions(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.sfn.list_executions(stateMachineArn=self.state_machine_arn)["executions"]
        return found

    def events(self) -> list[dict[str, Any]]:
        """Every event the bus delivered to the queue so far (drains the queue)."""
        found = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def idempotency_records(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.dynamodb.scan(TableName=IDEMPOTENCY_TABLE)["Items"]
        return items


@contextlib.contextmanager
def atomic_dynamodb_writes() -> Iterator[None]:
    """moto's DynamoDB checks a condition and then writes, without a lock: two threads can both pass
    `attribute_not_exists`, which DynamoDB itself never allows. Serialise moto's write paths for the
    duration (the registry's localcloud/patches/dynamodb_atomic.py is the runtime's version of this)."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    names = ("put_item", "update_item", "delete_item", "transact_write_items")
    originals = {name: getattr(DynamoDBBackend, name) for name in names}

    def locked(original: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return original(*args, **kwargs)

        return call

    for name, original in originals.items():
        setattr(DynamoDBBackend, name, locked(original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(DynamoDBBackend, name, original)


@contextlib.contextmanager
def moto_world(registry: FakeRegistry | None = None, **environment: str) -> Iterator[Aws]:
    """A fresh emulated account with the ingest function's resources, its environment set, and the
    function's wiring pointed at them."""
    saved = {k: os.environ.get(k) for k in [*ENVIRONMENT, *environment, "LIFECYCLE_STATE_MACHINE_ARN"]}
    os.environ.update(ENVIRONMENT)
    os.environ.update(environment)
    try:
        with mock_aws(), atomic_dynamodb_writes():
            s3 = boto3.client("s3", region_name=REGION)
            s3.create_bucket(Bucket=BUCKET)
            s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
            dynamodb = boto3.client("dynamodb", region_name=REGION)
            dynamodb.create_table(
                TableName=IDEMPOTENCY_TABLE,
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            sqs = boto3.client("sqs", region_name=REGION)
            queue_url = sqs.create_queue(QueueName="lepton-events-test")["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            events = boto3.client("events", region_name=REGION)
            events.create_event_bus(Name=BUS)
            events.put_rule(
                Name="all-lepton", EventBusName=BUS, EventPattern=json.dumps({"source": ["lepton.lifecycle"]})
            )
            events.put_targets(Rule="all-lepton", EventBusName=BUS, Targets=[{"Id": "queue", "Arn": queue_arn}])
            sfn = boto3.client("stepfunctions", region_name=REGION)
            definition = {"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}}
            arn = sfn.create_state_machine(
                name=STATE_MACHINE,
                definition=json.dumps(definition),
                roleArn="arn:aws:iam::123456789012:role/lepton-lifecycle",
            )["stateMachineArn"]
            os.environ["LIFECYCLE_STATE_MACHINE_ARN"] = arn

            from lepton.observability import metrics

            metrics.namespace = metrics.namespace or "Lepton"  # imported before the environment was set
            app = load_handler_module()
            wiring = sys.modules["wiring"]
            fake = registry or FakeRegistry(projects=["wine", "cancer"])
            original = wiring.dataset_registry
            wiring.dataset_registry = lambda table_name: fake
            wiring.reset()
            try:
                yield Aws(s3, sfn, sqs, dynamodb, queue_url, arn, fake, app)
            finally:
                wiring.dataset_registry = original
                wiring.reset()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def bench_handler_run(path: str, contract_json: str) -> dict[str, Any]:
    """bench/ingest_bench.py: the whole handler on moto for one upload of `path` (a declared contract)."""
    import resource

    from lepton.data.models import DataContract

    registry = FakeRegistry(projects=["bench", "warm"])
    registry.adopt_contract("bench", DataContract.model_validate_json(contract_json))
    with moto_world(registry) as aws:
        aws.invoke(aws.upload("incoming/warm/wine.csv", (ROOT / "data" / "wine.csv").read_bytes()))  # warm-up
        event = aws.upload("incoming/bench/upload.csv", Path(path).read_bytes())
        start = time.perf_counter()
        result = aws.invoke(event)
        elapsed = time.perf_counter() - start
    assert result["results"][0]["outcome"] == "accepted", result
    return {"seconds": elapsed, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
