"""The deployed template's wiring, with nothing wired by hand: an HTTP request through the API
front door, an EventBridge event to its Lambda target, a Step Functions execution running Lambda
tasks with Retry and Catch, and an S3 upload running the ingest function."""

from __future__ import annotations

import json

import pytest
import requests
from lepton_stack import denied, deploy_lepton, role_documents

from lepton.registry import cursor


@pytest.fixture(scope="module")
def lepton(cloud):
    return deploy_lepton(cloud, "wiring")


def test_a_signed_request_reaches_the_api_function_with_the_callers_identity(lepton):
    api = lepton.api("alice")
    created = api.post("/projects", {"name": "wiring", "description": "through the front door"})
    assert created["name"] == "wiring"
    project = api.get("/projects/wiring")
    assert project["members"] == {lepton.arn("alice"): "admin"}  # the API saw alice's IAM identity


def test_openapi_document_is_served_through_the_front_door(lepton):
    document = lepton.api("alice").get("/openapi.json")
    assert "/projects/{project}/versions" in document["paths"]


def test_listings_page_with_cursors_signed_by_the_generated_secret(lepton, cloud, monkeypatch):
    """The API signs its cursors with the secret the template generates (CursorKeySecret): a
    cursor it issued continues the listing; the same position signed with the code's fallback key
    is refused as a bad cursor (400 naming it), not followed."""
    api = lepton.api("alice")
    for name in ("paging-a", "paging-b", "paging-c"):
        api.post("/projects", {"name": name})
    first = api.get("/projects", limit=1)
    assert len(first["items"]) == 1 and first["next_cursor"]
    second = api.get("/projects", limit=1, cursor=first["next_cursor"])
    assert len(second["items"]) == 1 and second["items"] != first["items"]
    position = json.loads(cursor._unb64(first["next_cursor"].split(".")[0]))["k"]
    monkeypatch.delenv("REGISTRY_CURSOR_KEY", raising=False)
    monkeypatch.delenv("REGISTRY_CURSOR_SECRET_ARN", raising=False)
    forged = cursor.encode(position)  # the fixed fallback key, which anyone can read in the code
    response = api.request("GET", "/projects", params={"limit": 1, "cursor": forged})
    assert response.status_code == 400
    assert response.json()["details"]["fields"][0]["field"] == "cursor"
    # the local runtime does not enforce roles: the API's role may read that secret, and another
    # function's role may not
    secret = lepton.stack.nested["Registry"].resources["CursorKeySecret"].physical_id
    lam = cloud.client("lambda")
    for logical in ("ApiFunction", "RegisterVersionFunction"):
        role = lam.get_function_configuration(FunctionName=lepton.function(logical))["Role"]
        refused = denied(role_documents(cloud, role), [("secretsmanager:GetSecretValue", secret)])
        assert refused == ([] if logical == "ApiFunction" else [("secretsmanager:GetSecretValue", secret)])


def test_an_unsigned_request_is_refused_with_403(lepton, cloud):
    response = requests.get(cloud.api_url("v1") + "/projects", timeout=30)
    assert response.status_code == 403
    assert response.json() == {"message": "Missing Authentication Token"}


def test_a_principal_without_execute_api_permission_is_refused_with_403(lepton):
    response = lepton.api("mallory", allowed=False).request("GET", "/projects")
    assert response.status_code == 403
    assert "execute-api:Invoke" in response.json()["Message"]


@pytest.fixture(scope="module")
def alert_inbox(lepton, cloud):
    """An SQS queue subscribed to the alerts topic, to read what people would receive."""
    sqs, sns = cloud.client("sqs"), cloud.client("sns")
    url = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=lepton.outputs["AlertsTopicArn"], Protocol="sqs", Endpoint=arn)

    def receive():
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        for m in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return [json.loads(m["Body"]) for m in messages]

    return receive


def test_an_event_on_the_bus_reaches_the_alerts_function(lepton, cloud, alert_inbox):
    detail = {
        "project": "wiring",
        "source": {"bucket": lepton.bucket, "key": "incoming/wiring/bad.csv"},
        "problems": [{"code": "empty_file", "message": "the file is empty"}],
        "report_key": "quarantine/wiring/bad.csv.report.json",
    }
    cloud.client("events").put_events(
        Entries=[
            {
                "Source": "lepton.lifecycle",
                "DetailType": "DatasetRejected",
                "Detail": json.dumps(detail),
                "EventBusName": lepton.outputs["EventBusName"],
            }
        ]
    )
    cloud.wait_idle()
    (message,) = lepton.wait_for(alert_inbox)
    assert message["Subject"] == "[WARNING] Upload refused for project wiring"
    assert "the file is empty" in json.loads(message["Message"])["message"]


def test_an_alarm_state_change_reaches_the_alerts_function(lepton, cloud, alert_inbox):
    detail = {
        "alarmName": f"lepton-{lepton.stage}-ingest-errors",
        "state": {"value": "ALARM", "reason": "Threshold Crossed"},
        "previousState": {"value": "OK", "reason": ""},
    }
    cloud.client("events").put_events(
        Entries=[
            {"Source": "aws.cloudwatch", "DetailType": "CloudWatch Alarm State Change", "Detail": json.dumps(detail)}
        ]
    )
    cloud.wait_idle()
    (message,) = lepton.wait_for(alert_inbox)
    assert message["Subject"] == f"[CRITICAL] lepton-{lepton.stage}-ingest-errors is in ALARM"


def test_an_execution_retries_a_throttled_lambda_task_then_catches_the_failure(lepton, cloud):
    """PrepareTraining throttled (reserved concurrency 0): its Retry tries 4 times, its Catch runs
    the MarkFailed Lambda task, and the execution fails with the lifecycle's error."""
    lam = cloud.client("lambda")
    function = lepton.function("PrepareTrainingFunction")
    lam.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=0)
    try:
        arn = lepton.start("throttled", {"project": "wiring", "dataset_id": "ds-0123456789abcdef0123"})
        done = cloud.wait_execution(arn, timeout=120)
    finally:
        lam.delete_function_concurrency(FunctionName=function)
    assert done["status"] == "FAILED"
    assert done["error"] == "LifecycleFailed"
    history = lepton.history(arn)
    failures = [e["taskFailedEventDetails"] for e in history if e["type"] == "TaskFailed"]
    assert [f["error"] for f in failures[:4]] == ["Lambda.TooManyRequestsException"] * 4
    entered = lepton.states_entered(arn)
    assert entered == ["PrepareTraining", "MarkFailed", "Failed"]
    outputs = [json.loads(e["taskSucceededEventDetails"]["output"]) for e in history if e["type"] == "TaskSucceeded"]
    (marked,) = [o["Payload"] for o in outputs if o["Payload"].get("error") == "Lambda.TooManyRequestsException"]
    assert marked["run_id"] is None  # the run never started: nothing in the registry to mark


def test_mark_failed_cannot_hide_a_run_that_never_started(lepton):
    # a start for an unknown project fails in PrepareTraining (ProjectNotFound), is caught, and ends Failed
    arn = lepton.start("no-such-project", {"project": "nothing-here", "dataset_id": "ds-0123456789abcdef0123"})
    done = lepton.cloud.wait_execution(arn, timeout=60)
    assert done["status"] == "FAILED"
    assert lepton.states_entered(arn) == ["PrepareTraining", "MarkFailed", "Failed"]
    failed = [e["taskFailedEventDetails"] for e in lepton.history(arn) if e["type"] == "TaskFailed"]
    assert failed[0]["error"] == "ProjectNotFound"
