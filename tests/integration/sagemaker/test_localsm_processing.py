"""CreateProcessingJob downloads its inputs, runs the container entrypoint and uploads its outputs."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_kit import wait_until
from botocore.exceptions import ClientError
from smlocal_helpers import BUCKET, IMAGE, ROLE, Aws

TERMINAL = {"Completed", "Failed", "Stopped"}


def processing_request(name: str, *arguments: str, **overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "ProcessingJobName": name,
        "RoleArn": ROLE,
        "AppSpecification": {
            "ImageUri": IMAGE,
            "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/toy_process.py"],
            "ContainerArguments": [
                "--input-dir",
                "/opt/ml/processing/input/data",
                "--output-dir=/opt/ml/processing/output",
                *arguments,
            ],
        },
        "ProcessingInputs": [
            {
                "InputName": "code",
                "S3Input": {
                    "S3Uri": f"s3://{BUCKET}/code/process/toy_process.py",
                    "LocalPath": "/opt/ml/processing/input/code",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            },
            {
                "InputName": "data",
                "S3Input": {
                    "S3Uri": f"s3://{BUCKET}/datasets/ds-1/",
                    "LocalPath": "/opt/ml/processing/input/data",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            },
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "result",
                    "S3Output": {
                        "S3Uri": f"s3://{BUCKET}/evaluations/{name}",
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 5}
        },
        "Environment": {"TOY_MODE": "evaluate"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }
    request.update(overrides)
    return request


def wait_processing(aws: Aws, name: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job: dict[str, Any] = aws.sagemaker.describe_processing_job(ProcessingJobName=name)
        return job if job["ProcessingJobStatus"] in TERMINAL else None

    result: dict[str, Any] = wait_until(done)
    return result


def log_lines(aws: Aws, name: str) -> list[str]:
    try:
        return aws.log_messages("/aws/sagemaker/ProcessingJobs", name)[1]
    except (ClientError, AssertionError):
        return []  # the job has not started its process yet


def test_processing_job_runs_end_to_end(aws: Aws) -> None:
    aws.sagemaker.create_processing_job(**processing_request("eval-ok"))
    job = wait_processing(aws, "eval-ok")

    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["ProcessingStartTime"] <= job["ProcessingEndTime"]
    assert job["Environment"] == {"TOY_MODE": "evaluate"}
    assert job["ProcessingResources"]["ClusterConfig"]["InstanceType"] == "ml.m5.large"
    assert aws.keys("evaluations/eval-ok/") == [
        "evaluations/eval-ok/nested/marker.txt",
        "evaluations/eval-ok/summary.json",
    ]
    summary = json.loads(aws.get("evaluations/eval-ok/summary.json"))
    assert summary["files"] == ["stats.json", "part-0.csv", "part-0.csv"]  # stats.json, train/..., validation/...
    assert summary["mode"] == "evaluate"
    stream, messages = aws.log_messages("/aws/sagemaker/ProcessingJobs", "eval-ok")
    assert re.fullmatch(r"eval-ok/algo-1-\d{10}", stream)
    assert messages == ["processed=3"]


def test_processing_failure_reports_the_message_file(aws: Aws) -> None:
    request = processing_request("eval-fail", "--fail", "--message-file", "/opt/ml/output/message")
    aws.sagemaker.create_processing_job(**request)
    job = wait_processing(aws, "eval-fail")

    assert job["ProcessingJobStatus"] == "Failed"
    assert job["FailureReason"] == "AlgorithmError: Evaluation failed: 3 input files but no model was given"
    assert job["ExitMessage"] == "Evaluation failed: 3 input files but no model was given"
    assert aws.keys("evaluations/eval-fail/") == [], "a failed job uploads no outputs"


def test_processing_job_without_an_entrypoint_fails_with_a_reason(aws: Aws) -> None:
    request = processing_request("eval-no-entrypoint")
    del request["AppSpecification"]["ContainerEntrypoint"]
    aws.sagemaker.create_processing_job(**request)
    job = wait_processing(aws, "eval-no-entrypoint")
    assert job["ProcessingJobStatus"] == "Failed"
    assert "ContainerEntrypoint is required" in job["FailureReason"]


def test_processing_job_can_be_stopped(aws: Aws) -> None:
    request = processing_request("eval-stop")
    request["AppSpecification"]["ContainerEntrypoint"] = [
        "python3",
        "-c",
        "import time; print('up', flush=True); time.sleep(30)",
    ]
    del request["AppSpecification"]["ContainerArguments"]
    aws.sagemaker.create_processing_job(**request)
    wait_until(lambda: "up" in log_lines(aws, "eval-stop"))
    aws.sagemaker.stop_processing_job(ProcessingJobName="eval-stop")
    assert wait_processing(aws, "eval-stop")["ProcessingJobStatus"] == "Stopped"
    with pytest.raises(ClientError, match="the processing job is in status Stopped"):
        aws.sagemaker.stop_processing_job(ProcessingJobName="eval-stop")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda r: r["ProcessingInputs"][1]["S3Input"].update(LocalPath="/tmp/data"),
            "ProcessingInputs.2.S3Input.LocalPath must be an absolute path under /opt/ml/processing/",
        ),
        (
            lambda r: r["ProcessingOutputConfig"]["Outputs"][0]["S3Output"].update(S3Uri="http://example.com/x"),
            "ProcessingOutputConfig.Outputs.1.S3Output.S3Uri must be an s3://bucket/key URI",
        ),
        (
            lambda r: r["ProcessingInputs"][1].update(InputName="code"),
            "ProcessingInputs.2.InputName 'code' is used twice",
        ),
    ],
)
def test_invalid_processing_requests_are_400s(aws: Aws, mutate: Any, message: str) -> None:
    request = processing_request("eval-invalid")
    mutate(request)
    with pytest.raises(ClientError) as error:
        aws.sagemaker.create_processing_job(**request)
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert message in error.value.response["Error"]["Message"]
