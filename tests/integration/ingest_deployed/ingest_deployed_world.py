"""The ingest function as deployed from template.yaml into the local AWS runtime, seen from outside.

Nothing here calls the handler or wires a resource by hand: uploads go through S3 (whose
notification runs the deployed function), duplicate deliveries through Lambda Invoke, projects and
their records through the signed REST API. What the function did is read back the way a person or
another service would: S3 listings, the API, Step Functions executions, the events on the Lepton
bus (a rule sends them to an SQS queue created here) and the metrics the function publishes as
CloudWatch embedded-metric-format lines in its log group."""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

ROOT = Path(__file__).resolve().parents[3]
WINE = ROOT / "data" / "wine.csv"
SAMPLE_EVENT = ROOT / "events" / "s3" / "object-created.json"
DATASET_EVENTS = ["DatasetAccepted", "DatasetRejected"]
_sequencer = itertools.count(1)


def wine_bytes() -> bytes:
    return WINE.read_bytes()


def wine_lines() -> tuple[str, list[str]]:
    header, *rows = WINE.read_text().splitlines()
    return header, rows


def csv_of(header: str, rows: list[str]) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


@dataclass
class Invocation:
    """What a synchronous Lambda Invoke answered."""

    payload: dict[str, Any]
    function_error: str | None

    @property
    def results(self) -> list[dict[str, Any]]:
        assert self.function_error is None, self.payload
        results: list[dict[str, Any]] = self.payload["results"]
        return results

    @property
    def error_type(self) -> str | None:
        return str(self.payload.get("errorType")) if self.function_error else None


@dataclass
class IngestWorld:
    lepton: Any  # tests/support/lepton_stack.DeployedLepton
    queue_url: str
    function_name: str
    received: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def attach(cls, lepton: Any) -> IngestWorld:
        """Subscribe an SQS queue to the dataset events on the deployed bus."""
        cloud = lepton.cloud
        sqs, events = cloud.client("sqs"), cloud.client("events")
        url = sqs.create_queue(QueueName=f"{lepton.stage}-dataset-events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        bus = lepton.outputs["EventBusName"]
        pattern = {"source": ["lepton.lifecycle"], "detail-type": DATASET_EVENTS}
        events.put_rule(Name=f"{lepton.stage}-dataset-events", EventBusName=bus, EventPattern=json.dumps(pattern))
        events.put_targets(
            Rule=f"{lepton.stage}-dataset-events", EventBusName=bus, Targets=[{"Id": "inbox", "Arn": arn}]
        )
        return cls(lepton=lepton, queue_url=url, function_name=lepton.function("IngestFunction"))

    @property
    def cloud(self) -> Any:
        return self.lepton.cloud

    @property
    def s3(self) -> Any:
        return self.cloud.client("s3")

    @property
    def bucket(self) -> str:
        return str(self.lepton.bucket)

    def physical_id(self, logical: str) -> str:
        """The physical id of a resource, by its logical id anywhere in the stack tree."""
        found = [r.physical_id for p, r in self.lepton.stack.all_resources() if p.split("/")[-1] == logical]
        assert len(found) == 1, (logical, found)
        return str(found[0])

    def role_policies(self) -> list[dict[str, Any]]:
        """The identity policies of the ingest function's role, as IAM holds them."""
        iam, lam = self.cloud.client("iam"), self.cloud.client("lambda")
        role = lam.get_function_configuration(FunctionName=self.function_name)["Role"].rsplit("/", 1)[1]
        documents = [
            iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
            for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
        ]
        for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
            policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
            version = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=policy["DefaultVersionId"])
            documents.append(version["PolicyVersion"]["Document"])
        return [json.loads(d) if isinstance(d, str) else d for d in documents]

    # -- projects, through the API -------------------------------------------------------------

    def create_project(self, name: str, **settings: Any) -> dict[str, Any]:
        project: dict[str, Any] = self.lepton.api("alice").post("/projects", {"name": name, **settings})
        return project

    def datasets(self, project: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.lepton.api("alice").get(f"/projects/{project}/datasets")["items"]
        return items

    def rejections(self, project: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.lepton.api("alice").get(f"/projects/{project}/rejections")["items"]
        return items

    # -- uploads and deliveries ------------------------------------------------------------------

    def upload(self, key: str, body: bytes, *, wait: bool = True) -> dict[str, Any]:
        """PutObject, as a person's upload would be; S3's notification runs the deployed function.
        Returns the S3 event AWS sends for this object (to deliver it again by hand)."""
        response = self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        if wait:
            self.cloud.wait_idle()
        return self.event_for(key, response, len(body))

    def event_for(self, key: str, put_response: dict[str, Any], size: int) -> dict[str, Any]:
        """The S3 ObjectCreated notification for an object: the sample's shape, the key URL-encoded."""
        event: dict[str, Any] = json.loads(SAMPLE_EVENT.read_text())
        record = event["Records"][0]
        record["s3"]["bucket"].update(name=self.bucket, arn=f"arn:aws:s3:::{self.bucket}")
        record["s3"]["object"] = {
            "key": quote_plus(key, safe="/"),
            "size": size,
            "eTag": put_response["ETag"].strip('"'),
            "versionId": put_response["VersionId"],
            "sequencer": f"{next(_sequencer):018X}",
        }
        return event

    def invoke(self, event: dict[str, Any]) -> Invocation:
        """A synchronous Invoke of the deployed function, as a duplicate delivery."""
        response = self.cloud.client("lambda").invoke(FunctionName=self.function_name, Payload=json.dumps(event))
        return Invocation(json.loads(response["Payload"].read()), response.get("FunctionError"))

    def deliver(self, event: dict[str, Any], attempts: int = 600) -> Invocation:
        """A delivery retried while another delivery of the same object is in progress, as Lambda
        retries an asynchronous invocation that failed."""
        for _ in range(attempts):
            answer = self.invoke(event)
            if answer.error_type != "IdempotencyAlreadyInProgressError":
                return answer
            time.sleep(0.05)
        raise AssertionError(f"still in progress after {attempts} attempts")

    # -- what the function left behind ---------------------------------------------------------

    def keys(self, prefix: str) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def versions(self, key: str) -> list[str]:
        listing = self.s3.list_object_versions(Bucket=self.bucket, Prefix=key)
        found = listing.get("Versions", []) + listing.get("DeleteMarkers", [])
        return [v["VersionId"] for v in found if v["Key"] == key]

    def read(self, key: str) -> bytes:
        body: bytes = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    def json(self, key: str) -> Any:
        return json.loads(self.read(key))

    def curated(self, project: str) -> dict[str, list[str]]:
        """dataset id -> its object keys (relative to the dataset's prefix)."""
        found: dict[str, list[str]] = {}
        for key in self.keys(f"curated/{project}/"):
            dataset, _, relative = key[len(f"curated/{project}/") :].partition("/")
            found.setdefault(dataset, []).append(relative)
        return found

    def check_manifest(self, project: str, dataset_id: str) -> dict[str, Any]:
        """The manifest lists every other object with its sha256; returns it after checking them."""
        prefix = f"curated/{project}/{dataset_id}/"
        manifest: dict[str, Any] = self.json(prefix + "manifest.json")
        assert sorted(manifest["files"]) == sorted(k for k in self.curated(project)[dataset_id] if k != "manifest.json")
        for relative, sha in manifest["files"].items():
            assert hashlib.sha256(self.read(prefix + relative)).hexdigest() == sha, relative
        return manifest

    def executions(self) -> list[dict[str, Any]]:
        sfn = self.cloud.client("stepfunctions")
        found: list[dict[str, Any]] = []
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=self.lepton.state_machine):
            found += page["executions"]
        return found

    def bus_events(self, settle: float = 0.0) -> list[dict[str, Any]]:
        """Every dataset event the bus delivered so far, oldest first (the queue is drained into
        `received`)."""
        sqs = self.cloud.client("sqs")
        deadline = time.monotonic() + settle
        while True:
            messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            for message in messages:
                self.received.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            if not messages and time.monotonic() >= deadline:
                return list(self.received)
            if not messages:
                time.sleep(0.05)

    def events_about(self, detail_type: str, **detail: Any) -> list[dict[str, Any]]:
        return [
            e
            for e in self.bus_events()
            if e["detail-type"] == detail_type and all(e["detail"].get(k) == v for k, v in detail.items())
        ]

    def metrics(self) -> Counter[str]:
        """Sum of each metric the function published (CloudWatch embedded metric format in its logs:
        on AWS, CloudWatch extracts these lines into the namespace's metrics)."""
        totals: Counter[str] = Counter()
        for line in self.cloud.logs(self.function_name):
            if not line.startswith("{") or '"_aws"' not in line:
                continue
            document = json.loads(line)
            for directive in document["_aws"]["CloudWatchMetrics"]:
                assert directive["Namespace"] == "Lepton"
                for metric in directive["Metrics"]:
                    values = document[metric["Name"]]
                    totals[metric["Name"]] += int(sum(values if isinstance(values, list) else [values]))
        return totals
