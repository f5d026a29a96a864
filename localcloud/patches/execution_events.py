"""Step Functions execution status change events.

AWS sends a "Step Functions Execution Status Change" event (source `aws.states`) to the account's
default event bus whenever a standard workflow's execution starts (RUNNING) and when it ends
(SUCCEEDED, FAILED, TIMED_OUT, ABORTED), best effort
(https://docs.aws.amazon.com/step-functions/latest/dg/eventbridge-integration.html). Rules on that
bus react to them: Lepton closes the run of an execution that was stopped, timed out or failed
without MarkFailed recording it. moto's interpreter sends nothing.

The seams: the parser's `Execution.start` (RUNNING, once the execution has begun) and
`BaseExecutionWorkerCommunication.terminated` (every end, after moto has recorded the status, the
stop date and the output). The event has the documented detail: executionArn, stateMachineArn, name,
status, startDate and stopDate (epoch milliseconds), input and output (JSON strings), inputDetails
and outputDetails. It goes through moto's put_events on the default bus, so rules match it as any
other event and their targets are delivered by the events patch."""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

from moto.events.models import events_backends
from moto.stepfunctions.parser.api import StateMachineType
from moto.stepfunctions.parser.backend import execution as parser_execution

log = logging.getLogger("localcloud")

SOURCE = "aws.states"
DETAIL_TYPE = "Step Functions Execution Status Change"

_original_start = parser_execution.Execution.start
_original_terminated = parser_execution.BaseExecutionWorkerCommunication.terminated


def _epoch_ms(value: Any) -> int | None:
    if not isinstance(value, datetime.datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return (value - datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)) // datetime.timedelta(milliseconds=1)


def detail_of(execution: Any, status: str) -> dict[str, Any]:
    """The event's detail for an execution that is in `status` (RUNNING, or how it ended)."""
    ended = status != "RUNNING"
    output = execution.output if status == "SUCCEEDED" else None
    return {
        "executionArn": execution.exec_arn,
        "stateMachineArn": execution.state_machine.arn,
        "name": execution.name,
        "status": status,
        "startDate": _epoch_ms(execution.start_date),
        "stopDate": _epoch_ms(execution.stop_date) if ended else None,
        "input": json.dumps(execution.input_data),
        "output": json.dumps(output) if output is not None else None,
        "inputDetails": {"included": True},
        "outputDetails": {"included": True} if output is not None else None,
    }


def publish(execution: Any, status: str) -> None:
    """Put the execution's status change on its account's default bus. Standard workflows only
    (express workflows send none). Best effort, as on AWS: a failure is logged and the execution
    goes on."""
    if execution.sm_type != StateMachineType.STANDARD:
        return
    try:
        backend = events_backends[execution.account_id][execution.region_name]
        backend.put_events(
            [
                {
                    "Source": SOURCE,
                    "DetailType": DETAIL_TYPE,
                    "Detail": json.dumps(detail_of(execution, status)),
                    "Resources": [execution.exec_arn],
                }
            ]
        )
    except Exception:
        log.exception("could not send the status change of %s", execution.exec_arn)


def _start(self: Any) -> None:
    _original_start(self)
    publish(self, "RUNNING")  # not the status now: a short execution may have ended already


def _terminated(self: Any) -> None:
    _original_terminated(self)
    publish(self.execution, self.execution.exec_status.value)


def install() -> None:
    parser_execution.Execution.start = _start  # type: ignore[method-assign]
    parser_execution.BaseExecutionWorkerCommunication.terminated = _terminated  # type: ignore[method-assign]
