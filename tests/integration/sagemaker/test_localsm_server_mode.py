"""The same runner works behind moto's HTTP server, as localcloud runs it: clients talk HTTP, jobs use the backends."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from smlocal_helpers import (
    BUCKET,
    REGION,
    SFN_ROLE,
    TOY,
    Aws,
    pipeline,
    script_hyperparameters,
    tar_gz,
    train_task,
    training_request,
    wait_until,
)


@pytest.fixture
def server_aws(sagemaker_runtime: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("MOTO_PORT", str(port))  # the Step Functions interpreter calls services here
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        import requests

        requests.post(
            f"{endpoint}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=120
        )
        clients = Aws(
            s3=boto3.client("s3", region_name=REGION, endpoint_url=endpoint),
            sagemaker=boto3.client("sagemaker", region_name=REGION, endpoint_url=endpoint),
            logs=boto3.client("logs", region_name=REGION, endpoint_url=endpoint),
            sfn=boto3.client("stepfunctions", region_name=REGION, endpoint_url=endpoint),
        )
        clients.s3.create_bucket(Bucket=BUCKET)
        clients.put("code/train/sourcedir.tar.gz", tar_gz(TOY / "toy_train.py"))
        clients.put("datasets/ds-1/train/part-0.csv", b"1.0,2.0\n")
        yield clients
    finally:
        from localcloud import sagemaker as local_sagemaker

        local_sagemaker.shutdown()
        requests.post(f"{endpoint}/moto-api/reset", timeout=120)
        server.stop()


def test_training_and_a_sync_state_run_behind_the_moto_server(server_aws: Aws) -> None:
    aws = server_aws
    aws.sagemaker.create_training_job(**training_request("server-job"))
    job = wait_until(
        lambda: (
            (d := aws.sagemaker.describe_training_job(TrainingJobName="server-job"))["TrainingJobStatus"]
            in ("Completed", "Failed")
            and d
        )
    )
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert "models/server-job/output/model.tar.gz" in aws.keys("models/")
    assert "done" in aws.log_messages("/aws/sagemaker/TrainingJobs", "server-job")[1]

    machine = aws.sfn.create_state_machine(
        name="server-sm", definition=json.dumps(pipeline(train_task())), roleArn=SFN_ROLE
    )
    payload = {"job_name": "server-sfn", "hyperparameters": script_hyperparameters(epochs=1)}
    arn = aws.sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name="run-1", input=json.dumps(payload))[
        "executionArn"
    ]
    execution = wait_until(lambda: (d := aws.sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d)
    assert execution["status"] == "SUCCEEDED", execution
    assert json.loads(execution["output"])["train"]["TrainingJobStatus"] == "Completed"
