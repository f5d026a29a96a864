"""The ingest use case: one uploaded object becomes a dataset version, or is quarantined with a report.

Order of the side effects, chosen so that a crash at any point leaves nothing half-done that a
retry would not finish, and nothing that the registry points at before it is complete:

accepted: (contract adopted if inferred) -> parquet parts, stats.json -> manifest.json (last) ->
          DatasetVersion registered -> lifecycle execution started (name derived from the dataset)
          -> DatasetAccepted event
rejected: copy to quarantine/ -> report -> rejection recorded -> incoming object deleted ->
          DatasetRejected event

Every step is idempotent on its own (same keys and bytes, registry idempotent on dataset_id and
rejection_id, execution named after the dataset), so redoing a partly done run converges.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, BinaryIO

from pydantic import BaseModel, ConfigDict, Field, computed_field

from dataprep.pipeline import Prepared, Refused, prepare
from dataprep.ports import LifecycleStarter, ObjectChanged, ObjectGone, ObjectStore
from dataprep.problems import ProblemLog
from dataprep.writing import MANIFEST, STATS, json_bytes
from lepton.data.models import (
    PROJECT_ID_PATTERN,
    DataContract,
    DatasetRejection,
    DatasetVersion,
    LifecycleInput,
    Problem,
    SourceObject,
    execution_name_for,
)
from lepton.data.ports import DatasetRegistry
from lepton.errors import ProjectNotFound
from lepton.events import EventPublisher
from lepton.events.data import MAX_EVENT_PROBLEMS, DatasetAccepted, DatasetRejected
from lepton.observability import logger, metrics

INCOMING = "incoming/"
QUARANTINE = "quarantine/"
CURATED = "curated/"
NO_PROJECT = "_no_project"
REPORT_SUFFIX = ".report.json"
SUPPORTED_SUFFIXES = (".csv",)
BYTES_PER_MEMORY_BYTE = 5
"""Peak memory is about 4x the CSV's size (bench/ingest_bench.py prints it); a file is refused up
front when 5x its size exceeds the function's memory."""


class S3ObjectRef(BaseModel):
    """An object an S3 ObjectCreated notification announced (key URL-decoded)."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    key: str
    size: int = Field(ge=0)
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def identity(self) -> str:
        """What makes two deliveries the same work: the object's version; in an unversioned bucket its
        etag and the event's sequencer (a re-upload of the same bytes is a new PutObject, with a new
        sequencer, while a duplicate delivery repeats the sequencer)."""
        if self.version_id:
            return f"{self.bucket}/{self.key}#v={self.version_id}"
        return f"{self.bucket}/{self.key}#etag={self.etag or ''}#seq={self.sequencer or ''}"

    @property
    def source(self) -> SourceObject:
        return SourceObject(
            bucket=self.bucket, key=self.key, version_id=self.version_id, etag=self.etag, size=self.size
        )


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    IGNORED = "ignored"  # not a dataset upload (a folder marker, another bucket)
    GONE = "gone"  # the object no longer exists: an earlier delivery quarantined it
    SUPERSEDED = "superseded"  # the key holds newer content, which has its own event


class IngestResult(BaseModel):
    """What one object became. Stored by the idempotency layer and returned to duplicate deliveries."""

    outcome: Outcome
    key: str
    project: str | None = None
    dataset_id: str | None = None
    dataset_number: int | None = None
    execution_name: str | None = None
    rejection_id: str | None = None
    quarantine_key: str | None = None
    report_key: str | None = None
    problem_codes: list[str] = Field(default_factory=list)
    message: str = ""


@dataclass(frozen=True)
class IngestSettings:
    bucket: str
    max_bytes: int
    memory_mb: int | None = None

    def size_limit(self, contract: DataContract | None) -> tuple[int, str]:
        limits = [(self.max_bytes, "the ingest limit INGEST_MAX_BYTES")]
        if contract is not None:
            limits.append((contract.max_bytes, "the project's contract (max_bytes)"))
        if self.memory_mb:
            limits.append((self.memory_mb * 2**20 // BYTES_PER_MEMORY_BYTE, "what the function's memory can hold"))
        return min(limits)


@dataclass(frozen=True)
class UploadKey:
    project: str
    relative: str  # the path below incoming/<project>/

    @classmethod
    def parse(cls, key: str) -> UploadKey | None:
        """incoming/<project>/<relative>; incoming/<file> names no project; None for anything else,
        folder markers (keys ending in '/') included."""
        if not key.startswith(INCOMING) or key.endswith("/"):
            return None
        project, _, relative = key[len(INCOMING) :].partition("/")
        return cls(project, relative) if relative else cls(NO_PROJECT, project)

    @property
    def quarantine_key(self) -> str:
        return f"{QUARANTINE}{self.project}/{self.relative}"

    @property
    def report_key(self) -> str:
        return self.quarantine_key + REPORT_SUFFIX


def rejection_id_for(ref: S3ObjectRef) -> str:
    return "rj-" + hashlib.sha256(ref.identity.encode()).hexdigest()[:20]


class IngestService:
    def __init__(
        self,
        *,
        store: ObjectStore,
        registry: DatasetRegistry,
        lifecycle: LifecycleStarter,
        publisher: EventPublisher,
        settings: IngestSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._registry = registry
        self._lifecycle = lifecycle
        self._publisher = publisher
        self._settings = settings
        self._now = clock

    def ingest(self, ref: S3ObjectRef, actor: str) -> IngestResult:
        started = time.perf_counter()
        result = self._ingest(ref, actor)
        logger.info(
            "ingest finished",
            extra={"outcome": result.outcome, "key": ref.key, "seconds": round(time.perf_counter() - started, 3)},
        )
        return result

    def _ingest(self, ref: S3ObjectRef, actor: str) -> IngestResult:
        upload = UploadKey.parse(ref.key)
        if ref.bucket != self._settings.bucket or upload is None:
            logger.warning("not a dataset upload: ignored", extra={"bucket": ref.bucket, "key": ref.key})
            metrics.add_metric(name="UploadsIgnored", unit="Count", value=1)
            return IngestResult(outcome=Outcome.IGNORED, key=ref.key, message="not under incoming/<project>/")

        log = ProblemLog()
        contract: DataContract | None = None
        known_project = False
        if upload.project == NO_PROJECT:
            log.add("no_project", "uploads go to incoming/<project>/<file>.csv; this key names no project")
        elif not re.fullmatch(PROJECT_ID_PATTERN, upload.project):
            log.add("unknown_project", f"{upload.project!r} is not a valid project id: no such project")
        else:
            try:
                contract = self._registry.get_contract(upload.project)
                known_project = True
            except ProjectNotFound:
                log.add(
                    "unknown_project",
                    f"project {upload.project!r} does not exist; create it through the API, then upload again",
                )
        if not log and not ref.key.lower().endswith(SUPPORTED_SUFFIXES):
            log.add("unsupported_format", "only CSV files (.csv, UTF-8, comma-separated, with a header) are ingested")
        limit, why = self._settings.size_limit(contract)
        if not log and ref.size > limit:
            log.add(
                "file_too_large",
                f"the file has {ref.size} bytes, more than {limit} allowed by {why}; split it into smaller uploads",
            )
        if log:
            return self._quarantine(ref, upload, problems=log.problems, actor=actor, record=known_project)

        def open_upload() -> BinaryIO:
            return self._store.open(ref.key, version_id=ref.version_id, etag=ref.etag)

        try:
            prepared = prepare(open_upload, contract, project=upload.project)
            if isinstance(prepared, Prepared) and contract is None:
                adopted = self._registry.adopt_contract(upload.project, prepared.contract)
                if adopted != prepared.contract:  # another upload's contract won: check against that one
                    logger.info("a concurrent upload's contract was adopted first", extra={"key": ref.key})
                    prepared = prepare(open_upload, adopted, project=upload.project)
        except ObjectGone:
            return IngestResult(outcome=Outcome.GONE, key=ref.key, project=upload.project, message="object gone")
        except ObjectChanged:
            return IngestResult(
                outcome=Outcome.SUPERSEDED, key=ref.key, project=upload.project, message="key overwritten since"
            )
        if isinstance(prepared, Refused):
            return self._quarantine(
                ref,
                upload,
                problems=prepared.problems,
                actor=actor,
                rows_in=prepared.rows_in,
                contract=prepared.contract,
            )
        return self._accept(ref, upload, prepared, actor)

    def _accept(self, ref: S3ObjectRef, upload: UploadKey, prepared: Prepared, actor: str) -> IngestResult:
        project = upload.project
        prefix = f"{CURATED}{project}/{prepared.dataset_id}/"
        uri = f"s3://{self._store.bucket}/{prefix}"
        existing = self._store.get_json(prefix + MANIFEST)
        if existing is not None and existing.get("content_sha256") == prepared.content_sha256:
            logger.info("curated dataset already in place", extra={"prefix": prefix})
        else:
            prepared.write(
                lambda obj: self._store.put(
                    prefix + obj.relative_key, obj.body, content_type=obj.content_type, sha256=obj.sha256
                )
            )

        parent = self._registry.latest_dataset(project)
        version = self._registry.register_dataset(
            DatasetVersion(
                project=project,
                dataset_id=prepared.dataset_id,
                content_sha256=prepared.content_sha256,
                schema_hash=prepared.schema_hash,
                rows=prepared.rows,
                rows_in=prepared.rows_in,
                rows_dropped=prepared.rows_dropped,
                source=ref.source,
                curated_prefix=uri,
                contract_source=prepared.contract.source,
                task=prepared.contract.task,
                target=prepared.contract.target,
                warnings=prepared.warnings,
                parent_dataset_id=parent.dataset_id if parent and parent.dataset_id != prepared.dataset_id else None,
                created_at=self._now(),
            )
        )
        name = execution_name_for(project, version.dataset_id)
        lifecycle_input = LifecycleInput(
            project=project,
            dataset_id=version.dataset_id,
            dataset_number=version.number,
            curated_prefix=uri,
            stats_uri=uri + STATS,
            task=prepared.contract.task,
            target=prepared.contract.target,
        )
        _, started = self._lifecycle.start(name, lifecycle_input)
        self._publisher.publish(
            [
                DatasetAccepted(
                    project=project,
                    actor=actor,
                    dataset_id=version.dataset_id,
                    dataset_number=version.number,
                    content_sha256=prepared.content_sha256,
                    schema_hash=prepared.schema_hash,
                    task=prepared.contract.task,
                    target=prepared.contract.target,
                    rows=prepared.rows,
                    rows_in=prepared.rows_in,
                    rows_dropped=prepared.rows_dropped,
                    curated_prefix=uri,
                    stats_uri=uri + STATS,
                    source_bucket=ref.bucket,
                    source_key=ref.key,
                    source_version=ref.version_id or ref.etag,
                    execution_name=name,
                    warnings=prepared.warnings[:MAX_EVENT_PROBLEMS],
                )
            ]
        )
        metrics.add_metric(name="DatasetsAccepted", unit="Count", value=1)
        metrics.add_metric(name="RowsIngested", unit="Count", value=prepared.rows_in)
        logger.info(
            "dataset accepted",
            extra={
                "project": project,
                "dataset_id": version.dataset_id,
                "number": version.number,
                "execution": name,
                "execution_started": started,
                "rows": prepared.rows.model_dump(),
                "timings": prepared.timings,
            },
        )
        return IngestResult(
            outcome=Outcome.ACCEPTED,
            key=ref.key,
            project=project,
            dataset_id=version.dataset_id,
            dataset_number=version.number,
            execution_name=name,
        )

    def _quarantine(
        self,
        ref: S3ObjectRef,
        upload: UploadKey,
        *,
        problems: list[Problem],
        actor: str,
        rows_in: int | None = None,
        contract: DataContract | None = None,
        record: bool = True,
    ) -> IngestResult:
        """Copy the upload to quarantine/ with its report, record the rejection, then delete the upload."""
        rejection_id = rejection_id_for(ref)
        try:
            self._store.copy(ref.key, upload.quarantine_key, version_id=ref.version_id)
        except ObjectGone:
            if self._store.get_json(upload.report_key) is None:
                return IngestResult(outcome=Outcome.GONE, key=ref.key, project=upload.project, message="object gone")
            # an earlier run copied it and deleted the upload; finish what it may have left undone
        report = _report(
            ref,
            upload,
            rejection_id=rejection_id,
            problems=problems,
            rows_in=rows_in,
            contract=contract,
            now=self._now(),
        )
        self._store.put(upload.report_key, json_bytes(report), content_type="application/json")
        if record:
            self._registry.record_rejection(
                DatasetRejection(
                    project=upload.project,
                    rejection_id=rejection_id,
                    source=ref.source,
                    problems=problems,
                    quarantine_key=upload.quarantine_key,
                    report_key=upload.report_key,
                    created_at=self._now(),
                )
            )
        deleted = self._store.delete(ref.key, version_id=ref.version_id, etag=ref.etag)
        if not deleted:
            logger.warning(
                "the upload was overwritten since; the newer object is left in place", extra={"key": ref.key}
            )
        codes = sorted({p.code for p in problems})
        self._publisher.publish(
            [
                DatasetRejected(
                    project=upload.project,
                    actor=actor,
                    rejection_id=rejection_id,
                    source_bucket=ref.bucket,
                    source_key=ref.key,
                    source_version=ref.version_id or ref.etag,
                    quarantine_key=upload.quarantine_key,
                    report_key=upload.report_key,
                    problem_codes=codes,
                    problem_count=len(problems),
                    problems=problems[:MAX_EVENT_PROBLEMS],
                )
            ]
        )
        metrics.add_metric(name="DatasetsRejected", unit="Count", value=1)
        logger.warning(
            "upload refused",
            extra={"key": ref.key, "report": upload.report_key, "codes": codes, "problems": len(problems)},
        )
        return IngestResult(
            outcome=Outcome.REJECTED,
            key=ref.key,
            project=upload.project,
            rejection_id=rejection_id,
            quarantine_key=upload.quarantine_key,
            report_key=upload.report_key,
            problem_codes=codes,
        )


def _report(
    ref: S3ObjectRef,
    upload: UploadKey,
    *,
    rejection_id: str,
    problems: list[Problem],
    rows_in: int | None,
    contract: DataContract | None,
    now: datetime,
) -> dict[str, Any]:
    """The quarantine report: what was refused and why, precisely enough to fix the file."""
    return {
        "project": upload.project,
        "source": ref.source.model_dump(mode="json"),
        "rejection_id": rejection_id,
        "quarantine_key": upload.quarantine_key,
        "rows_in": rows_in,
        "contract": contract.source.value if contract else None,  # declared or inferred; None: not checked
        "problem_count": len(problems),
        "problems": [p.model_dump(mode="json") for p in problems],
        "created_at": now.isoformat(),
    }
