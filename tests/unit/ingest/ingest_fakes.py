"""In-memory fakes behind the ingest service's ports (registry, object store, lifecycle, events).

The registry fake follows the DatasetRegistry port's documented semantics (first contract wins,
registration idempotent on (project, dataset_id) with dense numbers, rejections idempotent on
rejection_id) under a lock, so concurrency tests exercise the same guarantees DynamoDB gives."""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections.abc import Sequence
from typing import Any, BinaryIO

from dataprep.ports import ObjectChanged, ObjectGone

from lepton.data.models import DataContract, DatasetRejection, DatasetVersion, LifecycleInput
from lepton.errors import ProjectNotFound
from lepton.events import LeptonEvent


class FakeRegistry:
    def __init__(self, projects: Sequence[str] = ("wine",)) -> None:
        self._lock = threading.Lock()
        self.projects = set(projects)
        self.contracts: dict[str, DataContract] = {}
        self.datasets: dict[tuple[str, str], DatasetVersion] = {}
        self.rejections: dict[tuple[str, str], DatasetRejection] = {}
        self.calls: list[str] = []
        self.fail_next: dict[str, Exception] = {}

    def _enter(self, name: str) -> None:
        self.calls.append(name)
        error = self.fail_next.pop(name, None)
        if error is not None:
            raise error

    def _project(self, project: str) -> None:
        if project not in self.projects:
            raise ProjectNotFound(f"project {project!r} not found", project=project)

    def get_contract(self, project: str) -> DataContract | None:
        with self._lock:
            self._enter("get_contract")
            self._project(project)
            return self.contracts.get(project)

    def adopt_contract(self, project: str, contract: DataContract) -> DataContract:
        with self._lock:
            self._enter("adopt_contract")
            self._project(project)
            return self.contracts.setdefault(project, contract)

    def register_dataset(self, dataset: DatasetVersion) -> DatasetVersion:
        with self._lock:
            self._enter("register_dataset")
            self._project(dataset.project)
            key = (dataset.project, dataset.dataset_id)
            if key not in self.datasets:
                number = 1 + sum(1 for p, _ in self.datasets if p == dataset.project)
                self.datasets[key] = dataset.model_copy(update={"number": number})
            return self.datasets[key]

    def record_rejection(self, rejection: DatasetRejection) -> DatasetRejection:
        with self._lock:
            self._enter("record_rejection")
            self._project(rejection.project)
            return self.rejections.setdefault((rejection.project, rejection.rejection_id), rejection)

    def latest_dataset(self, project: str) -> DatasetVersion | None:
        with self._lock:
            self._enter("latest_dataset")
            mine = [d for (p, _), d in self.datasets.items() if p == project]
            return max(mine, key=lambda d: d.number) if mine else None


class MemoryStore:
    """An S3 bucket in memory, with etags (md5) and optional versioning."""

    def __init__(self, bucket: str = "lepton-data-test") -> None:
        self.bucket = bucket
        self.objects: dict[str, bytes] = {}
        self.writes: list[str] = []
        self.opened: list[str] = []
        self._lock = threading.Lock()

    def add(self, key: str, body: bytes) -> str:
        with self._lock:
            self.objects[key] = body
        return hashlib.md5(body).hexdigest()

    def open(self, key: str, *, version_id: str | None = None, etag: str | None = None) -> BinaryIO:
        with self._lock:
            self.opened.append(key)
            if key not in self.objects:
                raise ObjectGone(key)
            body = self.objects[key]
        if etag and hashlib.md5(body).hexdigest() != etag:
            raise ObjectChanged(key)
        return io.BytesIO(body)

    def put(self, key: str, body: Any, *, content_type: str, sha256: str | None = None) -> None:
        data = bytes(memoryview(body))
        if sha256 is not None:
            assert hashlib.sha256(data).hexdigest() == sha256, f"checksum mismatch for {key}"
        with self._lock:
            self.objects[key] = data
            self.writes.append(key)

    def get_json(self, key: str) -> Any | None:
        with self._lock:
            body = self.objects.get(key)
        return None if body is None else json.loads(body)

    def copy(self, source_key: str, dest_key: str, *, version_id: str | None = None) -> None:
        with self._lock:
            if source_key not in self.objects:
                raise ObjectGone(source_key)
            self.objects[dest_key] = self.objects[source_key]
            self.writes.append(dest_key)

    def delete(self, key: str, *, version_id: str | None = None, etag: str | None = None) -> bool:
        with self._lock:
            body = self.objects.get(key)
            if body is None or (etag and hashlib.md5(body).hexdigest() != etag):
                return False
            del self.objects[key]
            return True

    def keys(self, prefix: str = "") -> list[str]:
        with self._lock:
            return sorted(k for k in self.objects if k.startswith(prefix))


class RecordingLifecycle:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.executions: dict[str, LifecycleInput] = {}

    def start(self, name: str, payload: LifecycleInput) -> tuple[str, bool]:
        with self._lock:
            started = name not in self.executions
            self.executions.setdefault(name, payload)
        return f"arn:aws:states:us-east-1:123456789012:execution:lifecycle:{name}", started


class ListPublisher:
    def __init__(self) -> None:
        self.events: list[LeptonEvent] = []

    def publish(self, events: Sequence[LeptonEvent]) -> None:
        self.events.extend(events)
