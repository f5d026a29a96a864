"""What the test kits share (tests/integration/sagemaker for the local SageMaker itself,
tests/integration/sagemaker_jobs for the project's jobs on it, tests/support/lepton_stack.py for
the deployed template): SageMaker request pieces, archives, and polling."""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Callable
from typing import Any


def channel(name: str, uri: str, content_type: str | None = None) -> dict[str, Any]:
    """An InputDataConfig channel over an S3 prefix, downloaded in File mode."""
    spec: dict[str, Any] = {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}
        },
        "InputMode": "File",
    }
    if content_type is not None:
        spec["ContentType"] = content_type
    return spec


def untar(data: bytes) -> dict[str, bytes]:
    """The regular files of a .tar.gz, by name."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}  # type: ignore[union-attr]


def wait_until(predicate: Callable[[], Any], timeout: float = 120.0, interval: float = 0.02) -> Any:
    """The predicate's first truthy value; AssertionError if none comes within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
