"""Helpers of localcloud's SageMaker tests: toy entry points, requests and waits."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_kit import channel, wait_until

REGION = "us-east-1"
BUCKET = "lepton-smlocal-test"
ROLE = "arn:aws:iam::123456789012:role/sagemaker-execution"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-cpu-py311-ubuntu22.04-sagemaker"
TOY = Path(__file__).parent / "toy"
METRIC_REGEX = "=([-+]?[0-9.]+(?:[eE][-+]?[0-9]+)?|nan|inf)"
METRICS = [
    {"Name": name, "Regex": f"{name}{METRIC_REGEX}"}
    for name in ("train:loss", "validation:loss", "validation:accuracy", "epoch")
]
TERMINAL = {"Completed", "Failed", "Stopped"}


def tar_gz(*files: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in files:
            archive.add(path, arcname=path.name)
    return buffer.getvalue()


@dataclass
class Aws:
    s3: Any
    sagemaker: Any
    logs: Any
    sfn: Any

    def put(self, key: str, body: bytes) -> str:
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        return f"s3://{BUCKET}/{key}"

    def get(self, key: str) -> bytes:
        body: bytes = self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return body

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def log_messages(self, group: str, job_name: str) -> tuple[str, list[str]]:
        streams = self.logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{job_name}/")["logStreams"]
        assert len(streams) == 1, streams
        name = streams[0]["logStreamName"]
        events = self.logs.get_log_events(logGroupName=group, logStreamName=name, startFromHead=True)["events"]
        return name, [e["message"] for e in events]


def script_hyperparameters(**user: Any) -> dict[str, str]:
    """Hyperparameters as the SageMaker SDK sends them: JSON-encoded strings, script-mode keys included."""
    hps = {
        "sagemaker_program": json.dumps("toy_train.py"),
        "sagemaker_submit_directory": json.dumps(f"s3://{BUCKET}/code/train/sourcedir.tar.gz"),
    }
    hps.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in user.items()})
    return hps


def algorithm(image: str = IMAGE) -> dict[str, Any]:
    return {"TrainingImage": image, "TrainingInputMode": "File", "MetricDefinitions": METRICS}


def training_request(name: str, channels: list[dict[str, Any]] | None = None, **overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "AlgorithmSpecification": algorithm(),
        "RoleArn": ROLE,
        "HyperParameters": script_hyperparameters(epochs=3),
        "InputDataConfig": channels
        if channels is not None
        else [channel("train", f"s3://{BUCKET}/datasets/ds-1/train/")],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 120},
    }
    request.update(overrides)
    return request


def wait_training(aws: Aws, name: str, timeout: float = 120.0) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job: dict[str, Any] = aws.sagemaker.describe_training_job(TrainingJobName=name)
        return job if job["TrainingJobStatus"] in TERMINAL else None

    result: dict[str, Any] = wait_until(done, timeout)
    return result


# -- Step Functions ------------------------------------------------------------------------------
SFN_ROLE = "arn:aws:iam::123456789012:role/lepton-statemachine"
BEST_MODEL = f"States.Format('s3://{BUCKET}/pipeline/{{}}/output/model.tar.gz', $.tune.best)"


def train_task(resource: str = "arn:aws:states:::sagemaker:createTrainingJob.sync", **extra: Any) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": resource,
        "Parameters": {
            "TrainingJobName.$": "$.job_name",
            "AlgorithmSpecification": algorithm(),
            "RoleArn": ROLE,
            "HyperParameters.$": "$.hyperparameters",
            "InputDataConfig": [channel("train", f"s3://{BUCKET}/datasets/ds-1/train/")],
            "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/pipeline"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
            "StoppingCondition": {"MaxRuntimeInSeconds": 120},
        },
        "ResultPath": "$.train",
        **extra,
    }


def catching(errors: list[str]) -> list[dict[str, Any]]:
    return [{"ErrorEquals": errors, "ResultPath": "$.error", "Next": "MarkFailed"}]


def pipeline(train: dict[str, Any]) -> dict[str, Any]:
    return {
        "StartAt": "Train",
        "States": {
            "Train": {**train, "Next": "Done"},
            "MarkFailed": {"Type": "Pass", "Result": "FAILED", "ResultPath": "$.outcome", "End": True},
            "Done": {"Type": "Pass", "Result": "TRAINED", "ResultPath": "$.outcome", "End": True},
        },
    }
