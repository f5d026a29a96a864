"""Starting the lifecycle state machine: the ingest function for each accepted dataset
(`<project>-<dataset_id>`), the API for each run it records (`<project>-<run_id>`). The execution
name is the idempotency key: a second start of a name never runs the lifecycle twice. Step Functions
answers it with the running execution when the input is the same, and refuses it
(ExecutionAlreadyExists) when that execution has ended or the input differs."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel


def execution_arn(state_machine_arn: str, name: str) -> str:
    """arn:aws:states:<region>:<account>:stateMachine:<machine> -> ...:execution:<machine>:<name>"""
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"


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
            if error.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                return execution_arn(self._arn, name), False
            raise
        return str(response["executionArn"]), True
