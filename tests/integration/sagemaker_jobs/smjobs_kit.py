"""The real jobs/ code through the local SageMaker of a deployed Lepton: requests as the lifecycle
sends them (image, role, published code, curated channels), and waits on the SageMaker API."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from aws_kit import channel

ROOT = Path(__file__).resolve().parents[3]
JOBS = ROOT / "jobs"
# What cli/images.py resolves for a CPU training instance; localcloud runs it with the local Python.
TRAINING_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.6.0-cpu-py312-ubuntu22.04-sagemaker"
METRIC_DEFINITIONS: list[dict[str, str]] = json.loads((JOBS / "metric_definitions.json").read_text())
PROCESSING_CODE = "/opt/ml/processing/input/code"
TERMINAL = {"Completed", "Failed", "Stopped"}


def load_curated_data() -> ModuleType:
    """tests/unit/jobs/curated_data.py, by path (a site-packages `tests` package shadows ours)."""
    name = "smjobs_curated_data"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "unit" / "jobs" / "curated_data.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def s3_input(name: str, uri: str, local_path: str) -> dict[str, Any]:
    return {
        "InputName": name,
        "S3Input": {"S3Uri": uri, "LocalPath": local_path, "S3DataType": "S3Prefix", "S3InputMode": "File"},
    }


@dataclass(frozen=True)
class Dataset:
    """A curated dataset: on this machine (for reference computations) and in the data bucket."""

    local: Path
    uri: str  # s3://<bucket>/curated/<project>/<dataset_id>/

    @property
    def dataset_id(self) -> str:
        return self.local.name

    def split(self, name: str) -> Any:
        import pandas as pd

        return pd.read_parquet(self.local / name)


@dataclass
class JobsBench:
    """SageMaker requests for the real entry points, on a deployed Lepton (its bucket, role and code)."""

    cloud: Any
    bucket: str
    role_arn: str
    code: dict[str, str]  # code/jobs/current.json: code_version, files_uri, sourcedir_uri

    @property
    def sagemaker(self) -> Any:
        return self.cloud.client("sagemaker")

    @property
    def s3(self) -> Any:
        return self.cloud.client("s3")

    # -- data --------------------------------------------------------------------------------------
    def upload_curated(self, local: Path, project: str) -> Dataset:
        prefix = f"curated/{project}/{local.name}/"
        for path in sorted(p for p in local.rglob("*") if p.is_file()):
            key = prefix + path.relative_to(local).as_posix()
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=path.read_bytes())
        return Dataset(local, f"s3://{self.bucket}/{prefix}")

    def get(self, uri: str) -> bytes:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        body: bytes = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def keys(self, prefix: str) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    # -- requests ----------------------------------------------------------------------------------
    def hyperparameters(self, **values: Any) -> dict[str, str]:
        """Script mode as the SDK sends it: JSON-encoded values beside sagemaker_program/_submit_directory."""
        hps = {
            "sagemaker_program": json.dumps("train.py"),
            "sagemaker_submit_directory": json.dumps(self.code["sourcedir_uri"]),
        }
        hps.update({k: json.dumps(v) for k, v in values.items()})
        return hps

    def channels(self, dataset: Dataset, names: tuple[str, ...] = ("train", "validation", "stats")) -> list[dict]:
        uris = {
            "train": (dataset.uri + "train/", "application/x-parquet"),
            "validation": (dataset.uri + "validation/", "application/x-parquet"),
            "stats": (dataset.uri + "stats.json", "application/json"),
        }
        return [channel(name, *uris[name]) for name in names]

    def training_definition(self, dataset: Dataset, output: str, channels: tuple[str, ...] | None = None) -> dict:
        """Everything of a CreateTrainingJob request but its name and hyperparameters."""
        return {
            "AlgorithmSpecification": {
                "TrainingImage": TRAINING_IMAGE,
                "TrainingInputMode": "File",
                "MetricDefinitions": METRIC_DEFINITIONS,
            },
            "RoleArn": self.role_arn,
            "InputDataConfig": self.channels(dataset) if channels is None else self.channels(dataset, channels),
            "OutputDataConfig": {"S3OutputPath": f"s3://{self.bucket}/models/{output}/"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
            # two cores shared by everything: one intra-op thread suits these small models
            "Environment": {"OMP_NUM_THREADS": "1"},
        }

    def train(self, name: str, dataset: Dataset, channels: tuple[str, ...] | None = None, **hps: Any) -> dict:
        self.sagemaker.create_training_job(
            TrainingJobName=name,
            HyperParameters=self.hyperparameters(**hps),
            **self.training_definition(dataset, name, channels),
        )
        return self.wait("training", name)

    def process(
        self, name: str, script: str, arguments: list[str], inputs: list[dict], output_uri: str, output_path: str
    ) -> dict:
        """A processing job running a jobs/ script through processing_entry.py, as the Evaluate state does."""
        self.sagemaker.create_processing_job(
            ProcessingJobName=name,
            RoleArn=self.role_arn,
            AppSpecification={
                "ImageUri": TRAINING_IMAGE,
                "ContainerEntrypoint": ["python3", f"{PROCESSING_CODE}/processing_entry.py", script],
                "ContainerArguments": [*arguments, "--failure-file", "/opt/ml/output/message"],
            },
            ProcessingInputs=[
                *inputs,
                {
                    "InputName": "code",
                    "S3Input": {
                        "S3Uri": self.code["files_uri"],
                        "LocalPath": PROCESSING_CODE,
                        "S3DataType": "S3Prefix",
                        "S3InputMode": "File",
                    },
                },
            ],
            ProcessingOutputConfig={
                "Outputs": [
                    {
                        "OutputName": "output",
                        "S3Output": {"S3Uri": output_uri, "LocalPath": output_path, "S3UploadMode": "EndOfJob"},
                    }
                ]
            },
            ProcessingResources={
                "ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5}
            },
            StoppingCondition={"MaxRuntimeInSeconds": 600},
            Environment={"OMP_NUM_THREADS": "1"},
        )
        return self.wait("processing", name)

    def start_tuning(self, name: str, dataset: Dataset, config: dict[str, Any], static: dict[str, Any]) -> None:
        self.sagemaker.create_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=name,
            HyperParameterTuningJobConfig=config,
            TrainingJobDefinition={
                "StaticHyperParameters": self.hyperparameters(**static),
                **self.training_definition(dataset, name),
            },
        )

    def trials(self, tuning_job: str) -> list[dict]:
        """Every trial's DescribeTrainingJob, in trial order."""
        summaries = self.sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=tuning_job, MaxResults=100, SortBy="Name", SortOrder="Ascending"
        )["TrainingJobSummaries"]
        return [self.sagemaker.describe_training_job(TrainingJobName=s["TrainingJobName"]) for s in summaries]

    # -- waiting -----------------------------------------------------------------------------------
    def wait(self, kind: str, name: str, timeout: float = 300) -> dict:
        describe, key, status = {
            "training": ("describe_training_job", "TrainingJobName", "TrainingJobStatus"),
            "processing": ("describe_processing_job", "ProcessingJobName", "ProcessingJobStatus"),
            "tuning": (
                "describe_hyper_parameter_tuning_job",
                "HyperParameterTuningJobName",
                "HyperParameterTuningJobStatus",
            ),
        }[kind]
        deadline = time.monotonic() + timeout
        while True:
            job: dict = getattr(self.sagemaker, describe)(**{key: name})
            if job[status] in TERMINAL:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"{kind} job {name} still {job[status]} after {timeout}s")
            time.sleep(0.25)


def final_metrics(job: dict) -> dict[str, float]:
    return {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList") or []}


def log_lines(cloud: Any, group: str, job_name: str) -> list[str]:
    logs = cloud.client("logs")
    streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{job_name}/")["logStreams"]
    lines: list[str] = []
    for stream in streams:
        events = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True)
        lines += [e["message"] for e in events["events"]]
    return lines
