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


@pytest.fixture(scope="module")
def cloud() -> Iterator[object]:
    """The local AWS runtime, one per test module.

    moto's backends are process-wide, and tests elsewhere use moto in-process (`mock_aws`), whose
    start and stop reset every backend: a runtime never outlives its module, so the two never
    overlap."""
    from localcloud import LocalCloud

    with LocalCloud() as running:
        yield running
