"""Failure reporting under the SageMaker contract: a reason in a file, a non-zero exit."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from lepton_ml.errors import JobFailure

# SageMaker keeps the first 1024 characters of a FailureReason
MAX_REASON = 1024
EXIT_FAILURE = 1
EXIT_INTERNAL_ERROR = 2


def write_failure(path: Path, reason: str) -> None:
    """Writes ``reason`` (shortened to what SageMaker keeps) to ``path``; never raises."""
    text = reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"could not write the failure reason to {path}: {exc}", file=sys.stderr)


def run_job(main: Callable[[], None], failure_file: Path) -> int:
    """Runs ``main``; returns the process exit status after writing any failure reason.

    A JobFailure is an expected failure (bad input, divergence): its reason is written as is.
    Anything else is a bug in the job: its type and message are written and the traceback goes to
    the log.
    """
    try:
        main()
    except JobFailure as exc:
        print(f"FAILED: {exc.reason}", file=sys.stderr, flush=True)
        write_failure(failure_file, exc.reason)
        return EXIT_FAILURE
    except Exception as exc:  # noqa: BLE001 - the last line of defence: report, then exit non-zero
        traceback.print_exc()
        write_failure(failure_file, f"Internal error in the job code: {type(exc).__name__}: {exc}")
        return EXIT_INTERNAL_ERROR
    return 0
