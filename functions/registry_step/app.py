"""Registry tasks of the lifecycle state machine: `register` (a finished training job becomes a
model version) and `mark_failed` (a Catch marks the run and its version FAILED with the cause).
Inputs and outputs: lepton.registry.steps; samples: events/steps/.

`execution_ended` is not a task: an EventBridge rule sends it the lifecycle's "Step Functions
Execution Status Change" events for executions that ended ABORTED, TIMED_OUT or FAILED, and it
fails the run such an execution left unfinished (lepton.lifecycle.close_ended_run; sample:
events/steps/execution_aborted.json)."""

from __future__ import annotations

from functools import lru_cache, partial
from typing import Any

import boto3
from aws_lambda_powertools.utilities.parser import envelopes, event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from lepton.executions import describe_execution
from lepton.lifecycle import ExecutionStatusChange, close_ended_run
from lepton.observability import logger, metrics, tracer
from lepton.registry import steps
from lepton.registry.wiring import build_service
from lepton.settings import get_settings


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=steps.RegisterInput)
def register(event: steps.RegisterInput, context: LambdaContext) -> dict[str, Any]:
    return steps.register_from_training_job(build_service(get_settings()), event).model_dump(mode="json")


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=steps.MarkFailedInput | steps.MarkFailedFromState)
def mark_failed(event: steps.MarkFailedInput | steps.MarkFailedFromState, context: LambdaContext) -> dict[str, Any]:
    step = event.to_input() if isinstance(event, steps.MarkFailedFromState) else event
    return steps.mark_failed(build_service(get_settings()), step).model_dump(mode="json")


@lru_cache(maxsize=1)
def _stepfunctions() -> Any:
    return boto3.client("stepfunctions")  # only this handler needs it: not created at import


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=ExecutionStatusChange, envelope=envelopes.EventBridgeEnvelope)
def execution_ended(event: ExecutionStatusChange, context: LambdaContext) -> dict[str, Any]:
    closed = close_ended_run(build_service(get_settings()), event, partial(describe_execution, _stepfunctions()))
    logger.info("execution ended", extra=closed.model_dump())
    return closed.model_dump(mode="json")
