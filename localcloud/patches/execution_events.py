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
other event and their targets are delivered by the events patch.

StopExecution ends the execution at once, as on AWS: AWS answers DescribeExecution with ABORTED
and StopExecution's stop date as soon as StopExecution returns, while a task in flight (a Lambda
invocation, the job a `.sync` task waits on) finishes or is stopped after. moto's interpreter only
signals its worker thread and records ABORTED once the worker has unwound (on a busy machine the
job it waited on was Stopped first). The seam is the parser's `Execution.stop`: an execution still
RUNNING is recorded ABORTED with the stop date at once; when its worker ends, it stays ABORTED with
that date and its status change event is sent then.

`wait_ended(arn)` waits for an execution's worker to have ended (its event sent): what
`LocalCloud.wait_execution` waits for, so that a test sees an execution's side effects."""

from __future__ import annotations

import datetime
import json
import logging
import threading
import time
from typing import Any

from moto.events.models import events_backends
from moto.stepfunctions.parser.api import ExecutionStatus, StateMachineType
from moto.stepfunctions.parser.backend import execution as parser_execution

log = logging.getLogger("localcloud")

SOURCE = "aws.states"
DETAIL_TYPE = "Step Functions Execution Status Change"

_original_start = parser_execution.Execution.start
_original_stop = parser_execution.Execution.stop
_original_terminated = parser_execution.BaseExecutionWorkerCommunication.terminated

_ended: set[str] = set()  # executions whose worker has ended
_ended_changed = threading.Condition()


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


def _stop(self: Any, stop_date: datetime.datetime, error: str | None, cause: str | None) -> None:
    _original_stop(self, stop_date, error, cause)
    if self.exec_status == ExecutionStatus.RUNNING:
        self.exec_status = ExecutionStatus.ABORTED
        self.stop_date = stop_date
        self.localcloud_stopped_at = stop_date


def _terminated(self: Any) -> None:
    execution = self.execution
    try:
        _original_terminated(self)
        stopped_at = getattr(execution, "localcloud_stopped_at", None)
        if stopped_at is not None:  # StopExecution's date, not the worker's end
            execution.stop_date = stopped_at
        publish(execution, execution.exec_status.value)
    finally:
        with _ended_changed:
            _ended.add(execution.exec_arn)
            _ended_changed.notify_all()


def wait_ended(execution_arn: str, timeout: float) -> bool:
    """Wait until the execution's worker has ended and its status change event was sent."""
    deadline = time.monotonic() + timeout
    with _ended_changed:
        while execution_arn not in _ended:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            _ended_changed.wait(remaining)
    return True


def install() -> None:
    with _ended_changed:  # a new emulator: an ARN from the last one may come again
        _ended.clear()
    parser_execution.Execution.start = _start  # type: ignore[method-assign]
    parser_execution.Execution.stop = _stop  # type: ignore[method-assign]
    parser_execution.BaseExecutionWorkerCommunication.terminated = _terminated  # type: ignore[method-assign]
