"""What the ingest service needs from the outside world, besides the registry
(lepton.data.ports.DatasetRegistry) and the event publisher (lepton.events.EventPublisher).
The AWS adapters live in functions/ingest/adapters.py; tests pass fakes or the adapters on moto."""

from __future__ import annotations

from typing import Any, BinaryIO, Protocol

from lepton.data.models import LifecycleInput


class ObjectGone(Exception):
    """The object (or the version) no longer exists."""


class ObjectChanged(Exception):
    """The key now holds other content than the event announced (an unversioned bucket was written again)."""


class ObjectStore(Protocol):
    """One S3 bucket."""

    bucket: str

    def open(self, key: str, *, version_id: str | None = None, etag: str | None = None) -> BinaryIO:
        """A stream of the object's bytes: that version, or the current object only if its etag still
        matches. Raises ObjectGone or ObjectChanged."""

    def put(self, key: str, body: bytes | Any, *, content_type: str, sha256: str | None = None) -> None:
        """Write an object; with `sha256` (hex) the store verifies the bytes it received."""

    def get_json(self, key: str) -> Any | None:
        """The object parsed as JSON, or None when it does not exist."""

    def copy(self, source_key: str, dest_key: str, *, version_id: str | None = None) -> None:
        """Server-side copy within the bucket. Raises ObjectGone."""

    def delete(self, key: str, *, version_id: str | None = None, etag: str | None = None) -> bool:
        """Delete that version, or the current object only if its etag still matches; False when
        nothing was deleted because the key holds other content now."""


class LifecycleStarter(Protocol):
    def start(self, name: str, payload: LifecycleInput) -> tuple[str, bool]:
        """Start the lifecycle execution `name` with `payload`; returns (execution ARN, started now).
        Idempotent on `name`: an execution of that name that exists already is not an error."""
