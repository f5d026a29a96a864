"""What the registry's domain logic needs from storage and from the outside world.

Reads are plain methods. Every change goes through `commit(Change)`: the repository applies a
Change as ONE atomic, conditional write (a DynamoDB TransactWriteItems) or not at all, and raises
`CommitConflict` when a condition no longer holds (somebody else changed the project since it was
read). The domain retries on CommitConflict with jitter, then answers 409.

Conditions a repository enforces for each part of a Change:
- project: created only if absent; replaced only if its audit_seq is still `expect_audit_seq`
  (every change of a project advances audit_seq, so this serialises all changes of a project);
- version_puts, audit, history, dataset_puts, claims, membership_puts: only if absent;
- version_updates: only if the version's status is still `before.status`; only the mutable fields
  (status, tags, description, aliases, status_reason, status_changed_at, failure) are written;
- alias_puts/alias_deletes: only if the alias still points at `before.version` (absent if None);
- run_puts: created if absent, or replaced only if its status is still `before.status`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from lepton.data.models import DatasetRejection, DatasetVersion
from lepton.registry.models import (
    Alias,
    AliasHistoryEntry,
    AuditEntry,
    Membership,
    ModelVersion,
    Project,
    Run,
    RunStatus,
    VersionStatus,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    cursor: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """A project and some of its items, read together (one BatchGetItem on DynamoDB)."""

    project: Project | None
    versions: dict[int, ModelVersion] = field(default_factory=dict)
    aliases: dict[str, Alias] = field(default_factory=dict)
    datasets: dict[str, DatasetVersion] = field(default_factory=dict)
    runs: dict[str, Run] = field(default_factory=dict)


@dataclass(frozen=True)
class VersionQuery:
    status: VersionStatus | None = None
    branch: str | None = None
    tag: str | None = None
    tag_value: str | None = None
    newest_first: bool = True


@dataclass(frozen=True)
class Update(Generic[T]):
    before: T | None
    after: T


@dataclass(frozen=True)
class JobClaim:
    """(project, training job) -> version number: registering a training job twice is idempotent."""

    project: str
    training_job: str
    version: int


@dataclass
class Change:
    project: Update[Project]
    audit: AuditEntry | None
    version_puts: list[ModelVersion] = field(default_factory=list)
    version_updates: list[Update[ModelVersion]] = field(default_factory=list)
    alias_puts: list[Update[Alias]] = field(default_factory=list)
    alias_deletes: list[Alias] = field(default_factory=list)
    history: list[AliasHistoryEntry] = field(default_factory=list)
    dataset_puts: list[DatasetVersion] = field(default_factory=list)
    run_puts: list[Update[Run]] = field(default_factory=list)
    claims: list[JobClaim] = field(default_factory=list)
    membership_puts: list[Membership] = field(default_factory=list)
    membership_deletes: list[Membership] = field(default_factory=list)
    require_no_contract: bool = False


class CommitConflict(Exception):
    """A condition of the Change no longer held; nothing was written.

    `failed` names the parts whose conditions failed when the store says so: "project",
    "version:<n>", "alias:<name>", "claim:<job>", "dataset:<id>", "run:<id>", "audit:<seq>", ...
    (empty when the store only reports a conflict with a concurrent transaction). `project` is
    the current project record when the project's condition failed and the store returned it."""

    def __init__(
        self, failed: Sequence[str] = (), message: str = "concurrent modification", *, project: Project | None = None
    ) -> None:
        super().__init__(message)
        self.failed = set(failed)
        self.project = project  # the project as it is now, when the store returned it (saves a read)


class RegistryRepository(Protocol):
    def get_project(self, name: str) -> Project | None: ...

    def read(
        self,
        project: str,
        *,
        versions: Sequence[int] = (),
        aliases: Sequence[str] = (),
        datasets: Sequence[str] = (),
        runs: Sequence[str] = (),
    ) -> Snapshot:
        """The project and the named items in one round trip (strongly consistent)."""
        ...

    def projects_of(self, principal: str, limit: int, cursor: str | None) -> Page[Membership]: ...

    def get_version(self, project: str, number: int) -> ModelVersion | None: ...

    def get_versions(self, project: str, numbers: Sequence[int]) -> dict[int, ModelVersion]: ...

    def query_versions(self, project: str, query: VersionQuery, limit: int, cursor: str | None) -> Page[ModelVersion]:
        """One page of versions: one Query (a page may hold fewer than `limit` items when a filter
        applies; follow the cursor until it is None)."""
        ...

    def get_alias(self, project: str, name: str) -> Alias | None: ...

    def list_aliases(self, project: str) -> list[Alias]: ...

    def alias_history(
        self, project: str, alias: str, *, at: datetime | None, limit: int, cursor: str | None
    ) -> Page[AliasHistoryEntry]:
        """Moves of an alias, newest first; with `at`, only moves at or before that instant."""
        ...

    def get_claim(self, project: str, training_job: str) -> JobClaim | None: ...

    def get_dataset(self, project: str, dataset_id: str) -> DatasetVersion | None: ...

    def list_datasets(self, project: str, limit: int, cursor: str | None) -> Page[DatasetVersion]: ...

    def put_rejection(self, rejection: DatasetRejection) -> DatasetRejection:
        """Store a rejection unless one with its id exists; return the stored one."""
        ...

    def list_rejections(self, project: str, limit: int, cursor: str | None) -> Page[DatasetRejection]: ...

    def get_run(self, project: str, run_id: str) -> Run | None: ...

    def list_runs(self, project: str, limit: int, cursor: str | None, status: RunStatus | None = None) -> Page[Run]:
        """Newest first; with `status`, only runs in it (a filter: a page may hold fewer than `limit`)."""
        ...

    def audit_entries(self, project: str, *, after_seq: int, limit: int) -> list[AuditEntry]:
        """Entries with seq > after_seq in ascending order (the verifier's walk)."""
        ...

    def audit_page(self, project: str, limit: int, cursor: str | None, newest_first: bool) -> Page[AuditEntry]: ...

    def commit(self, change: Change) -> None: ...


class ArtifactStore(Protocol):
    def sha256(self, uri: str) -> str | None:
        """The sha256 of the object at `uri`, or None when there is no such object."""
        ...

    def read_json(self, uri: str, max_bytes: int = 4 * 1024 * 1024) -> Any | None:
        """The JSON document at `uri` (an evaluation report), or None when there is no such object."""
        ...
