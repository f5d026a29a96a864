"""Unit tests of the ingest function: no network, in-memory fakes behind the ports."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
import pytest_socket

ROOT = Path(__file__).resolve().parents[3]
FUNCTION_DIR = ROOT / "functions" / "ingest"
for extra in (FUNCTION_DIR, Path(__file__).resolve().parent):
    # the Lambda's code root (`dataprep`, `wiring`, ... are top-level there) and the helper modules here
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))


@pytest.fixture(autouse=True)
def _no_network():
    """Unit tests never reach a network; the socket state before the test is restored after it."""
    before = socket.socket
    pytest_socket.disable_socket(allow_unix_socket=True)
    yield
    socket.socket = before  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _powertools_env(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "ingest")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Lepton")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
