"""Alerts: which events reach a person, and what the message says."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from lepton.alerts import Severity, alert_for

ROOT = Path(__file__).resolve().parents[3]
EVENTS = ROOT / "events"


def sample(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def test_alarm_entering_alarm_is_critical_and_names_the_alarm():
    alert = alert_for(sample("alerts/alarm_state_change.json"))
    assert alert is not None
    assert alert.severity is Severity.CRITICAL
    assert alert.subject == "lepton-dev-ingest-errors is in ALARM"
    assert "moved from OK to ALARM" in alert.message
    assert "Threshold Crossed" in alert.message


def test_alarm_recovery_is_information():
    alert = alert_for(sample("alerts/alarm_recovered.json"))
    assert alert is not None and alert.severity is Severity.INFO
    assert alert.subject == "lepton-dev-ingest-errors recovered"


def test_alarm_going_from_insufficient_data_to_ok_says_nothing():
    event = sample("alerts/alarm_recovered.json")
    event["detail"]["previousState"]["value"] = "INSUFFICIENT_DATA"
    assert alert_for(event) is None


def test_rejected_upload_names_the_file_and_the_first_problem():
    event = {
        "id": "1",
        "source": "lepton.lifecycle",
        "detail-type": "DatasetRejected",
        "detail": {
            "project": "wine",
            "source": {"bucket": "b", "key": "incoming/wine/bad.csv"},
            "problems": [{"code": "missing_columns", "message": "columns ['alcohol'] are missing"}],
            "report_key": "quarantine/wine/bad.csv.report.json",
        },
    }
    alert = alert_for(event)
    assert alert is not None and alert.severity is Severity.WARNING
    assert alert.project == "wine"
    assert "incoming/wine/bad.csv" in alert.message
    assert "columns ['alcohol'] are missing" in alert.message
    assert "quarantine/wine/bad.csv.report.json" in alert.message


def test_unrelated_events_raise_no_alert():
    assert alert_for({"source": "aws.s3", "detail-type": "Object Created", "detail": {}}) is None
    assert alert_for({"source": "lepton.lifecycle", "detail-type": "AliasMoved", "detail": {"project": "p"}}) is None


def test_sns_subject_is_short_ascii_on_one_line():
    alert = alert_for(sample("alerts/alarm_state_change.json"))
    assert alert is not None
    alert = alert.model_copy(update={"subject": "modèle\n" + "x" * 200})
    subject = alert.sns_subject
    assert len(subject) <= 100 and subject.isascii() and "\n" not in subject


def load_handler():
    spec = importlib.util.spec_from_file_location("alerts_app", ROOT / "functions" / "alerts" / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Context:
    function_name = "alerts"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:alerts"
    aws_request_id = "req-1"


@pytest.fixture
def topic(monkeypatch):
    with mock_aws():
        sns = boto3.client("sns", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        arn = sns.create_topic(Name="alerts")["TopicArn"]
        queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
        monkeypatch.setenv("ALERTS_TOPIC_ARN", arn)
        monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "alerts")
        yield sqs, queue


def test_handler_publishes_the_alert_to_the_topic(topic):
    sqs, queue = topic
    result = load_handler().handler(sample("alerts/alarm_state_change.json"), Context())
    assert result == {"sent": True, "subject": "lepton-dev-ingest-errors is in ALARM"}
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    envelope = json.loads(messages[0]["Body"])
    assert envelope["Subject"] == "[CRITICAL] lepton-dev-ingest-errors is in ALARM"
    assert json.loads(envelope["Message"])["severity"] == "CRITICAL"


def test_handler_sends_nothing_for_an_event_needing_no_attention(topic):
    sqs, queue = topic
    result = load_handler().handler({"source": "aws.s3", "detail-type": "x", "detail": {}}, Context())
    assert result == {"sent": False}
    assert "Messages" not in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)
