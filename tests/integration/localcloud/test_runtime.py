"""The local AWS runtime itself, on a small fixture application: deploy, Lambda execution,
event sources, Step Functions, and the API Gateway front door."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

FIXTURE = Path(__file__).parent / "fixtures" / "app" / "template.yaml"


@pytest.fixture(scope="module")
def app(cloud):
    return cloud.deploy(FIXTURE, "fixture-app", {"Stage": "fixture"})


def invoke(cloud, name, event):
    response = cloud.client("lambda").invoke(FunctionName=name, Payload=json.dumps(event))
    return response.get("FunctionError"), json.loads(response["Payload"].read())


def test_handler_runs_with_its_layer_environment_and_context(cloud, app):
    error, payload = invoke(cloud, app.outputs["EchoName"], {"hello": "world"})
    assert error is None
    assert payload["greeting"] == "hello from the layer"
    assert payload["event"] == {"hello": "world"}
    assert payload["function_name"] == app.outputs["EchoName"]
    assert 0 < payload["remaining_ms"] <= 10_000
    assert payload["env"] == {
        "TABLE": app.outputs["TableName"],
        "STAGE": "fixture",
        "AWS_LAMBDA_FUNCTION_NAME": app.outputs["EchoName"],
        "AWS_REGION": "us-east-1",
    }
    # as in Lambda, whose Python runtime ships botocore without awscrt
    assert payload["botocore_uses_crt"] is False


def test_execution_environment_stays_warm_between_invocations(cloud, app):
    _, first = invoke(cloud, app.outputs["EchoName"], {})
    _, second = invoke(cloud, app.outputs["EchoName"], {})
    assert second["invocations"] == first["invocations"] + 1


def test_handler_error_is_reported_as_lambda_reports_it(cloud, app):
    error, payload = invoke(cloud, app.outputs["EchoName"], {"fail": "on purpose"})
    assert error == "Unhandled"
    assert payload["errorType"] == "ValueError"
    assert payload["errorMessage"] == "asked to fail: on purpose"
    assert any("app.py" in frame for frame in payload["stackTrace"])
    assert all("bootstrap.py" not in frame for frame in payload["stackTrace"])


def test_timeout_kills_the_invocation(cloud, app):
    started = time.monotonic()
    error, payload = invoke(cloud, app.outputs["SleepyName"], {"seconds": 5})
    assert time.monotonic() - started < 4
    assert error == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in payload["errorMessage"]
    # the next invocation gets a fresh environment and works
    error, payload = invoke(cloud, app.outputs["SleepyName"], {"seconds": 0})
    assert error is None and payload == {"slept": 0}


def test_logs_reach_cloudwatch_logs(cloud, app):
    invoke(cloud, app.outputs["EchoName"], {"fail": "for the log"})
    lines = cloud.logs(app.outputs["EchoName"])
    assert any(line.startswith("START RequestId:") for line in lines)
    assert any("ValueError: asked to fail: for the log" in line for line in lines)
    assert any(line.startswith("REPORT RequestId:") for line in lines)


def test_s3_upload_runs_the_notified_function_with_an_aws_shaped_record(cloud, app):
    s3 = cloud.client("s3")
    key = "incoming/my project/data file.csv"
    version = s3.put_object(Bucket=app.outputs["BucketName"], Key=key, Body=b"a,b\n1,2\n")["VersionId"]
    s3.put_object(Bucket=app.outputs["BucketName"], Key="elsewhere/ignored.csv", Body=b"x")
    cloud.wait_idle()
    table = cloud.client("dynamodb")
    items = {i["pk"]["S"]: json.loads(i["event"]["S"]) for i in table.scan(TableName=app.outputs["TableName"])["Items"]}
    encoded = "incoming/my+project/data+file.csv"
    assert encoded in items, items.keys()
    record = items[encoded]
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["name"] == app.outputs["BucketName"]
    assert record["s3"]["object"]["versionId"] == version
    assert record["s3"]["object"]["size"] == 8
    assert not any(k.startswith("elsewhere") for k in items)


def test_eventbridge_rule_delivers_to_a_lambda_target(cloud, app):
    events = cloud.client("events")
    response = events.put_events(
        Entries=[{"Source": "fixture.events", "DetailType": "Ping", "Detail": json.dumps({"n": 7})}]
    )
    assert response["FailedEntryCount"] == 0
    cloud.wait_idle()
    item = cloud.client("dynamodb").get_item(TableName=app.outputs["TableName"], Key={"pk": {"S": "event"}})["Item"]
    delivered = json.loads(item["event"]["S"])
    assert delivered["detail-type"] == "Ping"
    assert delivered["detail"] == {"n": 7}
    assert delivered["source"] == "fixture.events"


def test_an_async_event_that_keeps_failing_goes_to_the_on_failure_destination(cloud, app):
    """Lambda's asynchronous retries as the event invoke configuration says (1 retry here), then the
    invocation record in the SQS queue named as the on-failure destination; a success sends none."""
    name, url = app.outputs["FlakyName"], app.outputs["FailedEventsUrl"]
    lam, sqs = cloud.client("lambda"), cloud.client("sqs")
    assert lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"ok": 1}')["StatusCode"] == 202
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"fail": "twice", "n": 3}))
    cloud.wait_idle()
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    assert len(messages) == 1
    record = json.loads(messages[0]["Body"])
    function_arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    assert record["version"] == "1.0"
    assert record["requestContext"]["functionArn"] == f"{function_arn}:$LATEST"
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestPayload"] == {"fail": "twice", "n": 3}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert record["responsePayload"]["errorMessage"] == "asked to fail: twice"
    datetime.strptime(record["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ")


def test_state_machine_runs_lambda_tasks_with_retry_then_catch(cloud, app):
    sfn = cloud.client("stepfunctions")
    ok = sfn.start_execution(stateMachineArn=app.outputs["MachineArn"], name="works", input=json.dumps({"x": 1}))
    done = cloud.wait_execution(ok["executionArn"])
    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"])["Payload"]["event"] == {"x": 1}

    bad = sfn.start_execution(stateMachineArn=app.outputs["MachineArn"], name="fails", input=json.dumps({"fail": "x"}))
    done = cloud.wait_execution(bad["executionArn"], timeout=60)
    assert done["status"] == "SUCCEEDED"  # the Catch routed it to the Caught state
    output = json.loads(done["output"])
    assert output["error"]["Error"] == "ValueError"
    history = sfn.get_execution_history(executionArn=bad["executionArn"])["events"]
    scheduled = [e for e in history if e["type"] == "TaskScheduled"]
    assert len(scheduled) == 3  # the first attempt and two retries
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if e["type"] == "PassStateEntered"]
    assert entered == ["Caught"]


@pytest.fixture(scope="module")
def users(cloud, app):
    iam = cloud.client("iam")
    keys = {}
    for name, allowed in (("alice", True), ("mallory", False)):
        iam.create_user(UserName=name)
        if allowed:
            iam.put_user_policy(
                UserName=name,
                PolicyName="invoke",
                PolicyDocument=json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"}],
                    }
                ),
            )
        key = iam.create_access_key(UserName=name)["AccessKey"]
        keys[name] = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    return keys


def signed(credentials, method, url, body=b""):
    request = AWSRequest(method=method, url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(credentials, "execute-api", "us-east-1").add_auth(request)
    return requests.request(method, url, headers=dict(request.headers), data=body, timeout=30)


def test_front_door_passes_the_callers_identity_to_the_function(cloud, app, users):
    response = signed(users["alice"], "POST", cloud.api_url("v1") + "/projects/p1?x=1", b'{"a": 1}')
    assert response.status_code == 200, response.text
    assert response.json() == {"path": "/projects/p1", "userArn": "arn:aws:iam::123456789012:user/alice"}


def test_front_door_refuses_unsigned_requests_with_403(cloud, app):
    response = requests.get(cloud.api_url("v1") + "/projects", timeout=30)
    assert response.status_code == 403
    assert response.json() == {"message": "Missing Authentication Token"}


def test_front_door_refuses_a_bad_signature(cloud, app, users):
    forged = Credentials(users["alice"].access_key, "not-the-secret")
    response = signed(forged, "GET", cloud.api_url("v1") + "/projects")
    assert response.status_code == 403
    assert "signature we calculated does not match" in response.json()["message"]


def test_front_door_refuses_a_principal_without_execute_api_permission(cloud, app, users):
    response = signed(users["mallory"], "GET", cloud.api_url("v1") + "/projects")
    assert response.status_code == 403
    assert "is not authorized to perform: execute-api:Invoke" in response.json()["Message"]


def test_front_door_refuses_an_unknown_access_key(cloud, app):
    response = signed(Credentials("AKIAUNKNOWNKEY000000", "x"), "GET", cloud.api_url("v1") + "/projects")
    assert response.status_code == 403
    assert response.json() == {"message": "The security token included in the request is invalid."}


def test_front_door_unknown_stage_is_403(cloud, app, users):
    response = signed(users["alice"], "GET", cloud.api_base_url + "/nostage/projects")
    assert response.status_code == 403


def test_executions_send_their_status_changes_to_the_default_bus(cloud):
    """As AWS does for standard workflows: RUNNING when an execution starts, then how it ended
    (SUCCEEDED, FAILED, ABORTED), with the documented detail, to rules on the default bus."""
    sfn, events, sqs = cloud.client("stepfunctions"), cloud.client("events"), cloud.client("sqs")
    queue_url = sqs.create_queue(QueueName="execution-status")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    machine = sfn.create_state_machine(
        name="status-changes",
        roleArn="arn:aws:iam::123456789012:role/status-changes",
        definition=json.dumps(
            {
                "StartAt": "Choose",
                "States": {
                    "Choose": {
                        "Type": "Choice",
                        "Choices": [
                            {"Variable": "$.go", "StringEquals": "fail", "Next": "Fail"},
                            {"Variable": "$.go", "StringEquals": "wait", "Next": "Wait"},
                        ],
                        "Default": "Done",
                    },
                    "Wait": {"Type": "Wait", "Seconds": 60, "Next": "Done"},
                    "Fail": {"Type": "Fail", "Error": "Boom", "Cause": "on purpose"},
                    "Done": {"Type": "Pass", "Result": {"ok": True}, "End": True},
                },
            }
        ),
    )["stateMachineArn"]
    events.put_rule(
        Name="execution-status",
        EventPattern=json.dumps({"source": ["aws.states"], "detail": {"stateMachineArn": [machine]}}),
    )
    events.put_targets(Rule="execution-status", Targets=[{"Id": "queue", "Arn": queue_arn}])

    arns = {}
    for go in ("done", "fail", "wait"):
        arns[go] = sfn.start_execution(stateMachineArn=machine, name=go, input=json.dumps({"go": go}))["executionArn"]
    for go in ("done", "fail"):
        cloud.wait_execution(arns[go])
    stopped = sfn.stop_execution(executionArn=arns["wait"])["stopDate"]
    # ABORTED as soon as StopExecution returns, with its stop date, as on AWS
    assert sfn.describe_execution(executionArn=arns["wait"])["status"] == "ABORTED"
    assert cloud.wait_execution(arns["wait"])["stopDate"] == stopped

    received: list[dict] = []
    deadline = time.monotonic() + 30
    while len(received) < 6 and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            received.append(json.loads(message["Body"]))
    assert {e["source"] for e in received} == {"aws.states"}
    assert {e["detail-type"] for e in received} == {"Step Functions Execution Status Change"}
    statuses = sorted((e["detail"]["name"], e["detail"]["status"]) for e in received)
    assert statuses == [
        ("done", "RUNNING"),
        ("done", "SUCCEEDED"),
        ("fail", "FAILED"),
        ("fail", "RUNNING"),
        ("wait", "ABORTED"),
        ("wait", "RUNNING"),
    ]
    by = {(e["detail"]["name"], e["detail"]["status"]): e for e in received}
    succeeded = by[("done", "SUCCEEDED")]
    assert succeeded["resources"] == [arns["done"]]
    detail = succeeded["detail"]
    assert detail["executionArn"] == arns["done"] and detail["stateMachineArn"] == machine
    assert json.loads(detail["input"]) == {"go": "done"} and json.loads(detail["output"]) == {"ok": True}
    assert isinstance(detail["startDate"], int) and detail["stopDate"] >= detail["startDate"]
    described = sfn.describe_execution(executionArn=arns["done"])
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert detail["startDate"] == (described["startDate"] - epoch) // timedelta(milliseconds=1)
    assert by[("wait", "ABORTED")]["detail"]["output"] is None
    epoch_ms = (stopped - epoch) // timedelta(milliseconds=1)
    assert by[("wait", "ABORTED")]["detail"]["stopDate"] == epoch_ms
    assert by[("wait", "RUNNING")]["detail"]["stopDate"] is None
