"""Shared test set-up. Tests never reach a real AWS account: the default credentials are fake and
every client points at moto (in-process) or the local AWS runtime."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_SESSION_TOKEN", None)
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Lepton")

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def cloud() -> Iterator[object]:
    """The local AWS runtime, started once per test process (moto's backends are process-wide)."""
    from localcloud import LocalCloud

    with LocalCloud() as running:
        yield running
