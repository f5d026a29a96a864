"""Registry tasks of the lifecycle state machine: `register` (a finished training job becomes a
model version) and `mark_failed` (a Catch marks the run and its version FAILED with the cause).
Inputs and outputs: lepton.registry.steps; samples: events/steps/."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

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
