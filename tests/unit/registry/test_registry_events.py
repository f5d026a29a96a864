"""Event schemas, their samples in events/registry/, and delivery on an EventBridge bus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from registry_testkit import ALICE, ROOT, deploying, make_service, registration, seed_project

from lepton.events.publisher import EventBridgePublisher
from lepton.events.registry import REGISTRY_EVENTS

SAMPLES = sorted((ROOT / "events" / "registry").glob("*.json"))
MODELS = {m.detail_type: m for m in REGISTRY_EVENTS}


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_sample_is_valid_against_its_model(path: Path) -> None:
    doc = json.loads(path.read_text())
    assert doc["source"] == "lepton.lifecycle"
    model = MODELS[doc["detail-type"]]
    event = model.model_validate(doc["detail"])
    assert json.loads(event.model_dump_json()) == doc["detail"]


def test_every_event_has_a_sample() -> None:
    sampled = {json.loads(p.read_text())["detail-type"] for p in SAMPLES}
    assert sampled == set(MODELS)


def test_a_sample_with_a_missing_field_is_refused() -> None:
    doc = json.loads((ROOT / "events" / "registry" / "alias_moved.json").read_text())
    del doc["detail"]["alias"]
    with pytest.raises(ValueError, match="alias"):
        MODELS["AliasMoved"].model_validate(doc["detail"])


def _bus_to_queue(bus: str) -> tuple[Any, str]:
    events = boto3.client("events", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    events.create_event_bus(Name=bus)
    url = sqs.create_queue(QueueName="lepton-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="all", EventBusName=bus, EventPattern=json.dumps({"source": ["lepton.lifecycle"]}))
    events.put_targets(Rule="all", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    return sqs, url


def _drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return out
        for m in messages:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_registration_and_promotion_put_their_events_on_the_bus(table: str) -> None:
    sqs, url = _bus_to_queue("lepton-test")
    publisher = EventBridgePublisher("lepton-test", boto3.client("events", region_name="us-east-1"))
    svc = make_service(table, publisher=publisher)
    ds = seed_project(svc, "wine")[0].dataset_id
    _drain(sqs, url)
    version, _ = svc.register_version(ALICE, "wine", registration(ds, "job-1"))
    registered = _drain(sqs, url)
    assert [e["detail-type"] for e in registered] == ["ModelVersionRegistered"]
    detail = registered[0]["detail"]
    assert (detail["project"], detail["version"], detail["training_job"]) == ("wine", 1, "job-1")
    assert detail["audit_seq"] == svc.get_project(ALICE, "wine").audit_seq
    deploying(svc, "wine", version.number)
    _drain(sqs, url)
    svc.promote(ALICE, "wine", version.number, "ship it")
    promoted = _drain(sqs, url)
    kinds = sorted((e["detail-type"], e["detail"].get("alias") or e["detail"].get("to_status")) for e in promoted)
    assert kinds == [("AliasMoved", "production"), ("ModelVersionStatusChanged", "PRODUCTION")]
    for e in promoted:
        MODELS[e["detail-type"]].model_validate(e["detail"])


def test_a_failed_change_publishes_nothing(table: str) -> None:
    sqs, url = _bus_to_queue("lepton-test")
    publisher = EventBridgePublisher("lepton-test", boto3.client("events", region_name="us-east-1"))
    svc = make_service(table, publisher=publisher)
    ds = seed_project(svc, "wine")[0].dataset_id
    svc.register_version(ALICE, "wine", registration(ds, "job-1"))
    _drain(sqs, url)
    with pytest.raises(Exception, match="REGISTERED"):
        svc.promote(ALICE, "wine", 1, "not deployed")
    assert _drain(sqs, url) == []


def test_publisher_never_fails_the_committed_request(table: str) -> None:
    """The bus does not exist: the change is committed, the failure is logged, nothing raised."""
    publisher = EventBridgePublisher("no-such-bus", boto3.client("events", region_name="us-east-1"))
    svc = make_service(table, publisher=publisher)
    ds = seed_project(svc, "wine")[0].dataset_id
    version, created = svc.register_version(ALICE, "wine", registration(ds, "job-1"))
    assert created and svc.get_version(ALICE, "wine", version.number).number == 1


def test_closing_a_run_puts_run_stopped_or_run_failed_on_the_bus(table: str) -> None:
    """A stopped run's event says why (error) and what the caller gave (cause); a closed run that
    failed is a RunFailed; a repeated close publishes nothing."""
    from lepton.registry.commands import NewRun
    from lepton.registry.models import FailureCause, RunOverrides, RunStatus

    sqs, url = _bus_to_queue("lepton-test")
    publisher = EventBridgePublisher("lepton-test", boto3.client("events", region_name="us-east-1"))
    svc = make_service(table, publisher=publisher)
    ds = seed_project(svc, "wine")[0].dataset_id
    arn = "arn:aws:states:us-east-1:123456789012:execution:lepton-dev-lifecycle:wine-{}"
    runs = [svc.create_run(ALICE, "wine", NewRun(overrides=RunOverrides(dataset_id=ds))) for _ in range(2)]
    _drain(sqs, url)
    stop = FailureCause(error="RunStopped", cause="wrong data")
    svc.close_run(ALICE, "wine", runs[0].run_id, arn.format(0), stop, started_for=True, status=RunStatus.STOPPED)
    timeout = FailureCause(error="ExecutionTimedOut", cause="execution ended TIMED_OUT")
    svc.close_run(ALICE, "wine", runs[1].run_id, arn.format(1), timeout, started_for=True)
    svc.close_run(ALICE, "wine", runs[0].run_id, arn.format(0), stop, started_for=True, status=RunStatus.STOPPED)
    drained = _drain(sqs, url)
    assert sorted(e["detail-type"] for e in drained) == ["RunFailed", "RunStopped"]  # one each
    events = {e["detail-type"]: e["detail"] for e in drained}
    stopped = events["RunStopped"]
    assert (stopped["run_id"], stopped["execution_arn"], stopped["error"], stopped["cause"]) == (
        runs[0].run_id,
        arn.format(0),
        "RunStopped",
        "wrong data",
    )
    assert (events["RunFailed"]["run_id"], events["RunFailed"]["error"]) == (runs[1].run_id, "ExecutionTimedOut")
    with pytest.raises(ValueError, match="FAILED or STOPPED"):
        svc.close_run(ALICE, "wine", runs[1].run_id, arn.format(1), timeout, started_for=True, status=RunStatus.RUNNING)
