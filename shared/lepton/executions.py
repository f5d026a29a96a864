"""Starting and stopping the lifecycle state machine's executions: the ingest function starts one
for each accepted dataset (`<project>-<dataset_id>`), the API one for each run it records
(`<project>-<run_id>`), and stops a run's on request. The execution name is the idempotency key: a
second start of a name never runs the lifecycle twice. Step Functions answers it with the running
execution when the input is the same, and refuses it (ExecutionAlreadyExists) when that execution
has ended or the input differs."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from lepton.observability import logger


def execution_arn(state_machine_arn: str, name: str) -> str:
    """arn:aws:states:<region>:<account>:stateMachine:<machine> -> ...:execution:<machine>:<name>"""
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def describe_execution(client: Any, arn: str) -> dict[str, Any] | None:
    """DescribeExecution through a Step Functions client, or None (logged) when Step Functions does
    not answer: the callers (PrepareTraining's check, ExecutionEnded) then act on what they know
    without it rather than fail."""
    try:
        return dict(client.describe_execution(executionArn=arn))
    except (ClientError, BotoCoreError):
        logger.warning("DescribeExecution failed", extra={"execution_arn": arn}, exc_info=True)
        return None


class StepFunctionsLifecycle:
    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self._sfn = client
        self._arn = state_machine_arn

    def start(self, name: str, payload: BaseModel) -> tuple[str, bool]:
        """The execution of that name, and False when Step Functions refused the start because it
        existed (ended, or with another input). A repeated start of a running execution with the
        same input is answered as if it had just started (True): no second execution either way."""
        try:
            response = self._sfn.start_execution(stateMachineArn=self._arn, name=name, input=payload.model_dump_json())
        except ClientError as error:
            if _code(error) == "ExecutionAlreadyExists":
                return self.arn_of(name), False
            raise
        return str(response["executionArn"]), True

    def arn_of(self, name: str) -> str:
        """The ARN of this state machine's execution named `name` (started or not)."""
        return execution_arn(self._arn, name)

    def stop(self, arn: str, error: str, cause: str) -> None:
        """StopExecution with `error` and `cause` (Step Functions records them as the execution's).
        An execution that was never started, or has already ended, is left as it is."""
        try:
            self._sfn.stop_execution(executionArn=arn, error=error[:256], cause=cause[:32_768])
        except ClientError as failed:
            if _code(failed) != "ExecutionDoesNotExist":
                raise
