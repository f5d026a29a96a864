"""S3 and CloudWatch Logs as the jobs see them: moto's in-process backends, never HTTP.

The same code serves `mock_aws()` in tests and the moto server, since both keep their state in the
same backend objects.
"""

from __future__ import annotations

import io
import json
import tarfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from moto.logs.models import logs_backends
from moto.s3.models import FakeDeleteMarker, s3_backends
from moto.utilities.utils import get_partition


class StorageError(Exception):
    """A data transfer failed; the message says what a person should fix."""


@dataclass(frozen=True)
class S3Uri:
    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str, field: str) -> S3Uri:
        parsed = urlparse(uri or "")
        if parsed.scheme != "s3" or not parsed.netloc:
            raise StorageError(f"{field} must be an s3://bucket/key URI, got '{uri}'")
        return cls(bucket=parsed.netloc, key=parsed.path.lstrip("/"))

    def child(self, *parts: str) -> S3Uri:
        key = "/".join([self.key.rstrip("/"), *parts]) if self.key.rstrip("/") else "/".join(parts)
        return S3Uri(self.bucket, key)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class S3Store:
    """Object transfers for one account and region."""

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region

    def _backend(self) -> Any:
        return s3_backends[self.account_id][get_partition(self.region)]

    def _bucket(self, bucket: str) -> Any:
        backend = self._backend()
        try:
            return backend.get_bucket(bucket)
        except Exception as exc:  # moto raises MissingBucket (or AccessDenied across accounts)
            raise StorageError(f'The S3 bucket "{bucket}" does not exist or is not accessible') from exc

    def keys_under(self, uri: S3Uri) -> list[str]:
        """The keys a listing of the prefix shows: in a versioned bucket, a deleted object keeps its
        name in moto's key store with a delete marker as its latest version, and S3 lists it no more."""
        bucket = self._bucket(uri.bucket)
        return sorted(
            name
            for name, latest in list(bucket.keys.items())
            if name.startswith(uri.key) and not isinstance(latest, FakeDeleteMarker)
        )

    def get_bytes(self, uri: S3Uri) -> bytes:
        self._bucket(uri.bucket)
        key = self._backend().get_object(uri.bucket, uri.key)
        if key is None:
            raise StorageError(f'The S3 object "{uri}" does not exist')
        value: bytes = key.value
        return value

    def put_bytes(self, uri: S3Uri, data: bytes) -> None:
        self._bucket(uri.bucket)
        self._backend().put_object(uri.bucket, uri.key, data)

    def download_prefix(self, uri: S3Uri, destination: Path) -> int:
        """Download every object whose key starts with the prefix, as SageMaker's S3Prefix does.

        An object whose key is the prefix itself lands under its own name; others keep their path
        relative to the prefix. Returns the number of objects; raises StorageError on none.
        """
        keys = [k for k in self.keys_under(uri) if not k.endswith("/")]
        if not keys:
            raise StorageError(f'No S3 objects found under S3 URL "{uri}"')
        for key in keys:
            relative = PurePosixPath(key).name if key == uri.key else key[len(uri.key) :].lstrip("/")
            self._write(destination, relative, self.get_bytes(S3Uri(uri.bucket, key)))
        return len(keys)

    def download_manifest(self, uri: S3Uri, destination: Path) -> int:
        """A ManifestFile data source: [{"prefix": "s3://b/p/"}, "rel/1", "rel/2", ...]."""
        try:
            manifest = json.loads(self.get_bytes(uri))
            prefix = S3Uri.parse(manifest[0]["prefix"], f"the manifest {uri} prefix")
            relatives = [str(item) for item in manifest[1:]]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise StorageError(f'The manifest file "{uri}" is not a valid SageMaker manifest: {exc}') from exc
        for relative in relatives:
            self._write(destination, relative, self.get_bytes(prefix.child(relative)))
        return len(relatives)

    def upload_directory(self, source: Path, uri: S3Uri) -> int:
        count = 0
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            self.put_bytes(uri.child(path.relative_to(source).as_posix()), path.read_bytes())
            count += 1
        return count

    @staticmethod
    def _write(destination: Path, relative: str, data: bytes) -> None:
        target = (destination / relative).resolve()
        if not target.is_relative_to(destination.resolve()):
            raise StorageError(f"The S3 key '{relative}' would be written outside its channel directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def tar_gz_directory(source: Path) -> bytes:
    """A model.tar.gz / output.tar.gz as SageMaker writes them: the directory's contents at the archive root."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(source.rglob("*")):
            archive.add(path, arcname=path.relative_to(source).as_posix(), recursive=False)
    return buffer.getvalue()


def extract_tar_gz(data: bytes, destination: Path, what: str) -> None:
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            archive.extractall(destination, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise StorageError(f"{what} is not a readable tar.gz archive: {exc}") from exc


class LogStreamWriter:
    """Appends a job's output to a CloudWatch Logs stream, in batches, in chronological order."""

    def __init__(self, account_id: str, region: str, group: str, stream: str, flush_interval: float = 0.2) -> None:
        self.group = group
        self.stream = stream
        self._account_id = account_id
        self._region = region
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()
        self._flush_interval = flush_interval
        self._timer: threading.Timer | None = None
        backend = self._backend()
        if group not in backend.groups:
            try:
                backend.create_log_group(group, {})
            except Exception:  # created concurrently by another job: fine
                if group not in backend.groups:
                    raise
        backend.ensure_log_stream(group, stream)

    def _backend(self) -> Any:
        return logs_backends[self._account_id][self._region]

    def write(self, message: str) -> None:
        with self._lock:
            self._buffer.append({"timestamp": int(time.time() * 1000), "message": message})
            due = time.monotonic() - self._last_flush >= self._flush_interval or len(self._buffer) >= 500
            if not due and self._timer is None:
                # A quiet job's last lines still reach CloudWatch within the interval.
                self._timer = threading.Timer(self._flush_interval, self.flush)
                self._timer.daemon = True
                self._timer.start()
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            events, self._buffer = self._buffer, []
            self._last_flush = time.monotonic()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if events:
                self._backend().put_log_events(self.group, self.stream, events)
