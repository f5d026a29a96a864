"""Fixtures for localcloud's SageMaker: moto in-process with the job runner installed, toy entry points in S3."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from smlocal_helpers import BUCKET, REGION, TOY, Aws, tar_gz

from localcloud import sagemaker as local_sagemaker


@pytest.fixture(scope="session")
def sagemaker_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    work_dir = tmp_path_factory.mktemp("localcloud-sagemaker")
    local_sagemaker.install(work_dir=work_dir, max_concurrent_jobs=4, stop_grace_seconds=1.0)
    yield work_dir
    local_sagemaker.shutdown()


@pytest.fixture(scope="module")
def module_aws(sagemaker_runtime: Path) -> Iterator[Aws]:
    """One in-process AWS per test module (moto's reset costs about a second); tests use unique names."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        clients = Aws(
            s3=boto3.client("s3", region_name=REGION),
            sagemaker=boto3.client("sagemaker", region_name=REGION),
            logs=boto3.client("logs", region_name=REGION),
            sfn=boto3.client("stepfunctions", region_name=REGION),
        )
        clients.s3.create_bucket(Bucket=BUCKET)
        clients.put("code/train/sourcedir.tar.gz", tar_gz(TOY / "toy_train.py"))
        clients.put("code/process/toy_process.py", (TOY / "toy_process.py").read_bytes())
        clients.put("datasets/ds-1/train/part-0.csv", b"1.0,2.0\n3.0,4.0\n5.0,6.0\n")
        clients.put("datasets/ds-1/validation/part-0.csv", b"7.0,8.0\n")
        clients.put("datasets/ds-1/stats.json", json.dumps({"rows": 4}).encode())
        yield clients


@pytest.fixture
def aws(module_aws: Aws) -> Iterator[Aws]:
    """The module's AWS; no job of a test outlives it."""
    try:
        yield module_aws
        local_sagemaker.wait_for_jobs(60)
    finally:
        local_sagemaker.shutdown()
