"""The boto3 adapters and the environment model, on moto."""

from __future__ import annotations

import base64
import hashlib
import json

import boto3
import pytest
from dataprep.ports import ObjectChanged, ObjectGone
from ingest_adapters import S3ObjectStore
from moto import mock_aws
from pydantic import ValidationError
from wiring import IngestEnvironment

from lepton.data.models import LifecycleInput, Task
from lepton.executions import StepFunctionsLifecycle, execution_arn

REGION = "us-east-1"


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket="plain")  # unversioned
        yield client


def test_an_unversioned_object_is_read_only_while_its_etag_matches(s3):
    store = S3ObjectStore(s3, "plain")
    etag = s3.put_object(Bucket="plain", Key="incoming/p/a.csv", Body=b"first")["ETag"].strip('"')
    assert store.open("incoming/p/a.csv", etag=etag).read() == b"first"
    s3.put_object(Bucket="plain", Key="incoming/p/a.csv", Body=b"second")
    with pytest.raises(ObjectChanged):
        store.open("incoming/p/a.csv", etag=etag)
    assert store.delete("incoming/p/a.csv", etag=etag) is False, "the newer upload is not ours to delete"
    assert s3.get_object(Bucket="plain", Key="incoming/p/a.csv")["Body"].read() == b"second"
    with pytest.raises(ObjectGone):
        store.open("incoming/p/missing.csv", etag=etag)
    assert store.get_json("curated/none.json") is None


def test_a_version_is_read_copied_and_deleted_by_its_id(s3):
    s3.create_bucket(Bucket="versioned")
    s3.put_bucket_versioning(Bucket="versioned", VersioningConfiguration={"Status": "Enabled"})
    store = S3ObjectStore(s3, "versioned")
    old = s3.put_object(Bucket="versioned", Key="incoming/p/a.csv", Body=b"old")["VersionId"]
    s3.put_object(Bucket="versioned", Key="incoming/p/a.csv", Body=b"new")
    assert store.open("incoming/p/a.csv", version_id=old).read() == b"old"
    store.copy("incoming/p/a.csv", "quarantine/p/a.csv", version_id=old)
    assert s3.get_object(Bucket="versioned", Key="quarantine/p/a.csv")["Body"].read() == b"old"
    assert store.delete("incoming/p/a.csv", version_id=old) is True
    assert s3.get_object(Bucket="versioned", Key="incoming/p/a.csv")["Body"].read() == b"new"
    with pytest.raises(ObjectGone):
        store.open("incoming/p/a.csv", version_id=old)


def test_puts_send_the_sha256_for_s3_to_verify(s3):
    """AWS refuses a PutObject whose bytes do not match x-amz-checksum-sha256 (moto neither checks nor
    stores it, so this checks what is sent)."""
    sent: list[bytes | None] = []
    s3.meta.events.register(
        "before-send.s3.PutObject", lambda request, **_: sent.append(request.headers.get("x-amz-checksum-sha256"))
    )
    store = S3ObjectStore(s3, "plain")
    body = json.dumps({"a": 1}).encode()
    store.put("curated/p/x.json", body, content_type="application/json", sha256=hashlib.sha256(body).hexdigest())
    assert sent == [base64.b64encode(hashlib.sha256(body).digest())]
    assert store.get_json("curated/p/x.json") == {"a": 1}


def test_starting_an_execution_twice_is_not_an_error():
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name=REGION)
        definition = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})
        arn = sfn.create_state_machine(name="life", definition=definition, roleArn="arn:aws:iam::123456789012:role/r")[
            "stateMachineArn"
        ]
        lifecycle = StepFunctionsLifecycle(sfn, arn)
        payload = LifecycleInput(
            project="wine",
            dataset_id="ds-0123456789abcdef0123",
            dataset_number=1,
            curated_prefix="s3://b/curated/wine/ds-0123456789abcdef0123/",
            stats_uri="s3://b/curated/wine/ds-0123456789abcdef0123/stats.json",
            task=Task.CLASSIFICATION,
            target="target",
        )
        first, started = lifecycle.start("wine-ds-0123456789abcdef0123", payload)
        assert started and first == execution_arn(arn, "wine-ds-0123456789abcdef0123")
        again, _ = lifecycle.start("wine-ds-0123456789abcdef0123", payload)
        other_input, started_again = lifecycle.start(
            "wine-ds-0123456789abcdef0123", payload.model_copy(update={"dataset_number": 2})
        )
        assert again == other_input == first and started_again is False
        assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 1
        assert json.loads(sfn.describe_execution(executionArn=first)["input"]) == payload.model_dump(mode="json")


def test_the_environment_names_what_is_missing():
    with pytest.raises(ValidationError, match="IDEMPOTENCY_TABLE"):
        IngestEnvironment.from_env({"DATA_BUCKET": "b", "REGISTRY_TABLE": "r", "EVENT_BUS_NAME": "e"})
    env = IngestEnvironment.from_env(
        {
            "DATA_BUCKET": "bucket",
            "REGISTRY_TABLE": "r",
            "IDEMPOTENCY_TABLE": "i",
            "EVENT_BUS_NAME": "e",
            "LIFECYCLE_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:life",
            "INGEST_MAX_BYTES": "1000",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "10240",
        }
    )
    assert (env.ingest_max_bytes, env.memory_mb, env.idempotency_ttl_seconds) == (1000, 10240, 86400)
