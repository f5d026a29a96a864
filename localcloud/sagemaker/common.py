"""Helpers shared by the training, processing and tuning jobs."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from moto.core.utils import utcnow
from moto.sagemaker.exceptions import ValidationError

if TYPE_CHECKING:
    from .runner import JobRunner

MAX_FAILURE_REASON = 1024  # SageMaker's limit on FailureReason and ExitMessage

# Serialises status changes of moto's job objects: a describe call iterates over the object's
# attributes while the job thread changes them.
STATE_LOCK = threading.RLock()


def now() -> datetime:
    return utcnow()


def stop_in_progress(
    runner: JobRunner, kind: str, backend: Any, name: str, status: Callable[[], str], mark_stopping: Callable[[], None]
) -> None:
    """Stop{Training,Processing,HyperParameterTuning}Job: refused unless the job is InProgress (as
    SageMaker does); otherwise the job is marked Stopping and its run is asked to stop."""
    with STATE_LOCK:
        current = status()
        if current != "InProgress":
            raise ValidationError(f"The request was rejected because the {kind} job is in status {current}.")
        mark_stopping()
    handle = runner.get(kind, backend.account_id, backend.region_name, name)
    if handle is not None:
        handle.request_stop("Stopped")


def clip(text: str, limit: int = MAX_FAILURE_REASON) -> str:
    """Keep a reason within SageMaker's length limit, keeping its end (where the error is)."""
    if len(text) <= limit:
        return text
    return "..." + text[-(limit - 3) :]


def error_excerpt(tail: Sequence[str]) -> str:
    """The lines that explain a crash: the last traceback if there is one, else the last lines."""
    lines = [line for line in tail if line.strip()]
    for index in range(len(lines) - 1, -1, -1):
        if lines[index].startswith("Traceback (most recent call last)"):
            return "\n".join(lines[index:])
    return "\n".join(lines[-10:])


def script_failure_reason(prefix: str, written: str | None, exit_code: int, tail: Sequence[str], command: str) -> str:
    """FailureReason of a job whose process exited non-zero.

    What the job wrote to its failure/message file wins (the container contract); otherwise the
    toolkit's ExecuteUserScriptError with the last error lines.
    """
    if written and written.strip():
        return clip(f"{prefix}: {written.strip()}")
    excerpt = error_excerpt(tail) or "(the process printed nothing)"
    head = f'{prefix}: ExecuteUserScriptError:\nExitCode {exit_code}\nErrorMessage "'
    foot = f'"\nCommand "{command}"'
    room = MAX_FAILURE_REASON - len(head) - len(foot)
    if room < 80:
        foot = '"'
        room = MAX_FAILURE_REASON - len(head) - len(foot)
    return head + clip(excerpt, room) + foot


def read_text(path: Any) -> str | None:
    try:
        text: str = path.read_text(errors="replace")
    except OSError:
        return None
    return text
