"""PrepareTraining: the lifecycle's first step. Reads the project's training configuration, records
the run, and returns the SageMaker job requests the state machine sends (lepton.lifecycle)."""

from __future__ import annotations

import json
import os
from functools import partial
from typing import Any

import boto3
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from lepton.executions import describe_execution
from lepton.lifecycle import JobCode, PrepareTrainingInput, start_run
from lepton.observability import logger, metrics, tracer
from lepton.registry.wiring import build_service
from lepton.settings import get_settings

CODE_POINTER_KEY = "code/jobs/current.json"
_s3 = boto3.client("s3")
_sfn = boto3.client("stepfunctions")


class JobCodeMissing(Exception):
    """The job code was never published to the data bucket (`lepton deploy` publishes it)."""


class S3PublishedCode:
    """The job code cli/jobs_code.py publishes under code/jobs/ in the data bucket."""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def current(self) -> JobCode:
        try:
            body = _s3.get_object(Bucket=self.bucket, Key=CODE_POINTER_KEY)["Body"].read()
        except _s3.exceptions.NoSuchKey:
            raise JobCodeMissing(
                f"s3://{self.bucket}/{CODE_POINTER_KEY} does not exist: publish the job code first (lepton deploy)"
            ) from None
        return JobCode.model_validate(json.loads(body))

    def version(self, code_version: str) -> JobCode:
        code = JobCode.at(self.bucket, code_version)
        key = code.sourcedir_uri.removeprefix(f"s3://{self.bucket}/")
        try:
            _s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise
            raise JobCodeMissing(
                f"job code version {code_version} is not published: s3://{self.bucket}/{key} does not exist"
            ) from None
        return code


@logger.inject_lambda_context(log_event=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=PrepareTrainingInput)
def handler(event: PrepareTrainingInput, context: LambdaContext) -> dict[str, Any]:
    bucket = os.environ["DATA_BUCKET"]
    prepared = start_run(
        build_service(get_settings()),
        event,
        S3PublishedCode(bucket),
        bucket,
        _s3.meta.region_name,
        partial(describe_execution, _sfn),
    )
    metrics.add_metric(name="RunsPrepared", unit="Count", value=1)
    logger.info("run prepared", extra={"run_id": prepared.run_id, "tuning": prepared.tuning is not None})
    return prepared.for_state_machine()
