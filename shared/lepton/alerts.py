"""Turning events into alerts a person reads: what happened, to what, and what to do next.

Pure: takes an EventBridge event (a Lepton event on the bus, or a CloudWatch alarm state change)
and returns the alert to send, or None when the event needs no one's attention."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict


class Severity(StrEnum):
    INFO = "INFO"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"


class Alert(BaseModel):
    model_config = ConfigDict(frozen=True)

    severity: Severity
    subject: str
    message: str
    source_event_id: str | None = None
    project: str | None = None

    @property
    def sns_subject(self) -> str:
        # SNS subjects: at most 100 printable ASCII characters, no newlines
        text = f"[{self.severity}] {self.subject}".encode("ascii", "replace").decode()
        return " ".join(text.split())[:100]


def _alarm(event: dict[str, Any]) -> Alert | None:
    detail = event.get("detail", {})
    state = detail.get("state", {})
    name = detail.get("alarmName", "an alarm")
    value = state.get("value")
    previous = detail.get("previousState", {}).get("value")
    if value == "ALARM":
        return Alert(
            severity=Severity.CRITICAL,
            subject=f"{name} is in ALARM",
            message=f"{name} moved from {previous} to ALARM: {state.get('reason', 'no reason given')}",
            source_event_id=event.get("id"),
        )
    if value == "OK" and previous == "ALARM":
        return Alert(
            severity=Severity.INFO,
            subject=f"{name} recovered",
            message=f"{name} is OK again: {state.get('reason', '')}",
            source_event_id=event.get("id"),
        )
    return None


def _lepton(event: dict[str, Any]) -> Alert | None:
    kind = event.get("detail-type")
    detail = event.get("detail", {})
    project = detail.get("project")
    if kind == "DatasetRejected":
        problems = detail.get("problems", [])
        first = problems[0]["message"] if problems else "see the quarantine report"
        return Alert(
            severity=Severity.WARNING,
            subject=f"Upload refused for project {project}",
            message=(
                f"{detail.get('source', {}).get('key', 'An upload')} was quarantined with "
                f"{len(problems)} problem(s); first: {first}. Report: {detail.get('report_key', 'quarantine/')}"
            ),
            source_event_id=event.get("id"),
            project=project,
        )
    if kind in {"ModelVersionStatusChanged", "RunFailed"} and detail.get("to_status", detail.get("status")) in {
        "FAILED",
        "ROLLED_BACK",
    }:
        status = detail.get("to_status", detail.get("status"))
        version = detail.get("version", detail.get("run_id", "?"))
        return Alert(
            severity=Severity.CRITICAL if status == "ROLLED_BACK" else Severity.WARNING,
            subject=f"{project} version {version} is {status}",
            message=f"{project} version {version} moved to {status}: {detail.get('reason') or detail.get('cause', '')}",
            source_event_id=event.get("id"),
            project=project,
        )
    return None


def alert_for(event: dict[str, Any]) -> Alert | None:
    """The alert an EventBridge event calls for, or None."""
    if event.get("source") == "aws.cloudwatch" and event.get("detail-type") == "CloudWatch Alarm State Change":
        return _alarm(event)
    if event.get("source") == "lepton.lifecycle":
        return _lepton(event)
    return None
