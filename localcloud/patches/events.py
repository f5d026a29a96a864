"""EventBridge: deliver to Lambda and Step Functions targets.

moto's `Rule.send_to_targets` supports log groups, archives, SQS, other buses and API
destinations, and raises NotImplementedError for Lambda and Step Functions targets. This delivers
those two as AWS does: Lambda asynchronously (with the runtime's retries), Step Functions with
StartExecution, each after Input / InputPath / InputTransformer are applied; everything else
still goes through moto."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from moto.events import models as events_models
from moto.events.utils import EventTemplateParser
from moto.utilities.arns import parse_arn

from localcloud.patches import awslambda

_original = events_models.Rule.send_to_targets
OURS = {"lambda", "states"}


def _event_for_target(target: dict[str, Any], event: dict[str, Any]) -> Any:
    event = dict(event)
    if isinstance(event.get("time"), int | float):
        event["time"] = datetime.fromtimestamp(float(event["time"]), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        from jsonpath_ng.ext import parse

        matches = parse(target["InputPath"]).find(event)
        return matches[0].value if matches else None
    if "InputTransformer" in target:
        transformer = target["InputTransformer"]
        return EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=event,  # type: ignore[arg-type]
        )
    return event


def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
    if not self.event_pattern.matches_event(original_event):
        return
    ours = [t for t in self.targets if parse_arn(t["Arn"]).service in OURS]
    others = [t for t in self.targets if parse_arn(t["Arn"]).service not in OURS]
    if others:
        view = copy.copy(self)
        view.targets = others
        _original(view, original_event, transform_input)
    for target in ours:
        arn = parse_arn(target["Arn"])
        payload = _event_for_target(target, original_event)
        if arn.service == "lambda":
            awslambda.invoke_async(target["Arn"], arn.account, arn.region, payload)
        else:
            from moto.stepfunctions.responses import get_backend

            backend = get_backend(arn.account, arn.region)
            backend.start_execution(
                state_machine_arn=target["Arn"], name=str(uuid.uuid4()), execution_input=json.dumps(payload)
            )


def install() -> None:
    events_models.Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]
