"""The registry's domain logic: pure, storage behind `RegistryRepository`, events behind
`EventPublisher`. No boto3, pynamodb or powertools event handler here.

Every change follows one pattern (`_mutate`): read the project (its members authorise the actor;
its audit head and counters are the preconditions), compute the Change (records, audit entry,
events), commit it as one conditional transaction, and publish the events after the commit. When
a concurrent change wins the race the commit raises CommitConflict and the whole step is redone
from fresh reads, after a jittered back-off, at most `RetryPolicy.max_attempts` times (then 409).
"""

from __future__ import annotations

import math
import random
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from lepton.data.models import DataContract, DatasetRejection, DatasetVersion
from lepton.errors import (
    AliasNotFound,
    AliasReserved,
    AlreadyExists,
    ConcurrentModification,
    Conflict,
    DatasetNotFound,
    Forbidden,
    IllegalTransition,
    IntegrityError,
    LastAdmin,
    ProjectExists,
    ProjectNotFound,
    RunNotFound,
    ValidationFailed,
    VersionNotFound,
)
from lepton.events.base import LeptonEvent
from lepton.events.registry import (
    AliasMoved,
    ModelVersionRegistered,
    ModelVersionStatusChanged,
    ModelVersionUpdated,
    ProjectCreated,
    ProjectMemberChanged,
    ProjectUpdated,
    RunCreated,
    RunFailed,
    RunStarted,
    RunStopped,
)
from lepton.registry.audit import GENESIS_HASH, VerifyReport, new_entry, verify_chain
from lepton.registry.commands import NewProject, NewRun, ProjectPatch, RegisterVersion, VersionPatch
from lepton.registry.diff import VersionDiff, diff_versions
from lepton.registry.models import (
    RESERVED_ALIASES,
    Alias,
    AliasHistoryEntry,
    AuditEntry,
    FailureCause,
    Membership,
    ModelVersion,
    ModelVersionCore,
    Project,
    Role,
    Run,
    RunStatus,
    VersionStatus,
    can_transition,
    normalise_principal,
    utcnow,
)
from lepton.registry.ports import (
    ArtifactStore,
    Change,
    CommitConflict,
    JobClaim,
    Page,
    RegistryRepository,
    Snapshot,
    Update,
    VersionQuery,
)

if TYPE_CHECKING:  # the adapter module imports botocore and the service's observability
    from lepton.events.publisher import EventPublisher

R = TypeVar("R")

PRODUCTION = "production"
PREVIOUS = "previous"
MANAGED = frozenset({PRODUCTION, PREVIOUS})
RUNNING_STATUSES = frozenset({VersionStatus.REGISTERED, VersionStatus.APPROVED, VersionStatus.DEPLOYING})

# who may move a version to a status through `transition` (PRODUCTION, SUPERSEDED and ROLLED_BACK
# only move with the production alias: promote, revert, rollback)
TRANSITION_ROLES: dict[VersionStatus, Role] = {
    VersionStatus.APPROVED: Role.APPROVER,
    VersionStatus.REJECTED: Role.APPROVER,
    VersionStatus.DEPLOYING: Role.APPROVER,
    VersionStatus.FAILED: Role.TRAINER,
    VersionStatus.ARCHIVED: Role.ADMIN,
}


@dataclass(frozen=True)
class Actor:
    """Who asks. `system` actors are platform components authorised by IAM (the lifecycle state
    machine, the rollback function, the ingest function): project roles do not apply to them."""

    principal: str
    system: bool = False


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded, jittered retries of a conflicting commit. The cap matters under heavy contention:
    N writers of one project need about N commit-times of spread to stop colliding."""

    max_attempts: int = 40
    base_s: float = 0.01
    cap_s: float = 0.5

    def delay(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
        return random.uniform(0, min(self.cap_s, self.base_s * (2 ** min(attempt, 16))))


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


@dataclass
class _Outcome(Generic[R]):
    result: R
    change: Change | None = None
    events: list[LeptonEvent] = field(default_factory=list)


@dataclass
class _Draft:
    """Accumulates one transaction's writes; the project record and audit entry come last."""

    project: Project
    actor: Actor
    at: datetime
    versions: dict[int, Update[ModelVersion]] = field(default_factory=dict)
    change: Change | None = None
    aliases: list[Alias] | None = None  # the project's aliases, read once per draft when needed

    def update_version(self, before: ModelVersion, **changes: Any) -> ModelVersion:
        current = self.versions[before.number].after if before.number in self.versions else before
        original = self.versions[before.number].before if before.number in self.versions else before
        after = current.model_copy(update=changes)
        self.versions[before.number] = Update(original, after)
        return after


@dataclass(frozen=True)
class LogEntry:
    version: ModelVersion
    depth: int


class RegistryService:
    def __init__(
        self,
        repo: RegistryRepository,
        events: EventPublisher | None = None,
        *,
        artifacts: ArtifactStore | None = None,
        clock: Callable[[], datetime] = utcnow,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.repo = repo
        self._events = events
        self._artifacts = artifacts
        self._clock = clock
        self._retry = retry or RetryPolicy()
        self._sleep = sleep

    # ------------------------------------------------------------------------------- machinery

    def _authorize(self, project: Project, actor: Actor, required: Role) -> None:
        if actor.system:
            return
        role = project.role_of(actor.principal)
        if role is None:
            raise Forbidden(
                f"{actor.principal} is not a member of project {project.name}",
                project=project.name,
                required_role=required.value,
            )
        if not role.allows(required):
            raise Forbidden(
                f"this needs the {required.value} role in project {project.name}; {actor.principal} is {role.value}",
                project=project.name,
                required_role=required.value,
                role=role.value,
            )

    def _load(self, name: str, actor: Actor, required: Role) -> Project:
        project = self.repo.get_project(name)
        if project is None:
            raise ProjectNotFound(f"project {name} does not exist", project=name)
        self._authorize(project, actor, required)
        return project

    def _snapshot(self, name: str, actor: Actor, required: Role, **items: Sequence[Any]) -> Snapshot:
        """The project (authorising the actor) and the named items, in one round trip."""
        snapshot = self.repo.read(name, **items)
        if snapshot.project is None:
            raise ProjectNotFound(f"project {name} does not exist", project=name)
        self._authorize(snapshot.project, actor, required)
        return snapshot

    def _mutate(
        self,
        name: str,
        actor: Actor,
        required: Role,
        build: Callable[[Project, CommitConflict | None], _Outcome[R]],
        *,
        project: Project | None = None,
    ) -> R:
        """Run `build` on the current project and commit its Change; on a conflict, redo it on
        the project the store returned with the conflict (or re-read it)."""
        conflict: CommitConflict | None = None
        for attempt in range(self._retry.max_attempts):
            if project is None:
                project = self._load(name, actor, required)
            else:
                self._authorize(project, actor, required)
            outcome = build(project, conflict)
            project = None
            if outcome.change is None:
                return outcome.result
            try:
                self.repo.commit(outcome.change)
            except CommitConflict as exc:
                conflict = exc
                project = exc.project
                if attempt + 1 < self._retry.max_attempts:
                    self._sleep(self._retry.delay(attempt))
                continue
            self._publish(outcome.events)
            return outcome.result
        raise ConcurrentModification(
            f"project {name} kept changing under this request; try again",
            project=name,
            attempts=self._retry.max_attempts,
        )

    def _publish(self, events: Sequence[LeptonEvent]) -> None:
        if self._events is not None and events:
            self._events.publish(events)

    def _draft(self, project: Project, actor: Actor) -> _Draft:
        return _Draft(project=project, actor=actor, at=self._clock())

    def _finish(
        self,
        draft: _Draft,
        *,
        action: str,
        target: str,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        reason: str = "",
        project_changes: dict[str, Any] | None = None,
        change: Change | None = None,
    ) -> tuple[Change, AuditEntry]:
        """Chain an audit entry to the project's head and produce the Change to commit."""
        project = draft.project
        entry = new_entry(
            project=project.name,
            seq=project.audit_seq + 1,
            prev_hash=project.audit_head,
            at=draft.at,
            actor=draft.actor.principal,
            action=action,
            target=target,
            before=before,
            after=after,
            reason=reason,
        )
        new_project = project.model_copy(
            update={**(project_changes or {}), "audit_seq": entry.seq, "audit_head": entry.hash}
        )
        result = change or Change(project=Update(project, new_project), audit=entry)
        result.project = Update(project, new_project)
        result.audit = entry
        result.version_updates = list(draft.versions.values()) + result.version_updates
        return result, entry

    @staticmethod
    def _ev(entry: AuditEntry) -> dict[str, Any]:
        return {"project": entry.project, "actor": entry.actor, "audit_seq": entry.seq, "audit_hash": entry.hash}

    # -------------------------------------------------------------------------------- projects

    def create_project(self, actor: Actor, command: NewProject) -> Project:
        at = self._clock()
        creator = normalise_principal(actor.principal)
        entry = new_entry(
            project=command.name,
            seq=1,
            prev_hash=GENESIS_HASH,
            at=at,
            actor=actor.principal,
            action="project.created",
            target=f"project/{command.name}",
            after=command.model_dump(mode="json"),
        )
        project = Project(
            name=command.name,
            description=command.description,
            contract=command.contract,
            training=command.training,
            policy=command.policy,
            members={creator: Role.ADMIN},
            created_at=at,
            created_by=actor.principal,
            audit_seq=1,
            audit_head=entry.hash,
        )
        change = Change(
            project=Update(None, project),
            audit=entry,
            membership_puts=[Membership(principal=creator, project=project.name, role=Role.ADMIN)],
        )
        try:
            self.repo.commit(change)
        except CommitConflict as exc:
            raise ProjectExists(f"project {command.name} already exists", project=command.name) from exc
        self._publish(
            [ProjectCreated(**self._ev(entry), description=project.description, has_contract=bool(project.contract))]
        )
        return project

    def get_project(self, actor: Actor, name: str) -> Project:
        return self._load(name, actor, Role.VIEWER)

    def list_projects(self, actor: Actor, limit: int, cursor: str | None) -> Page[Membership]:
        return self.repo.projects_of(normalise_principal(actor.principal), limit, cursor)

    def update_project(self, actor: Actor, name: str, patch: ProjectPatch) -> Project:
        fields = sorted(patch.model_fields_set)

        def build(project: Project, _: CommitConflict | None) -> _Outcome[Project]:
            values = {f: getattr(patch, f) for f in fields}
            before = {f: _dump(getattr(project, f)) for f in fields}
            after = {f: _dump(v) for f, v in values.items()}
            if before == after:
                return _Outcome(project)
            draft = self._draft(project, actor)
            change, entry = self._finish(
                draft,
                action="project.updated",
                target=f"project/{name}",
                before=before,
                after=after,
                project_changes=values,
            )
            return _Outcome(change.project.after, change, [ProjectUpdated(**self._ev(entry), fields=fields)])

        return self._mutate(name, actor, Role.ADMIN, build)

    def set_member(self, actor: Actor, name: str, principal: str, role: Role | None) -> Project:
        """Give `principal` a role in the project, or remove it (role None). Admins only; a project
        always keeps at least one admin."""
        member = normalise_principal(principal)

        def build(project: Project, _: CommitConflict | None) -> _Outcome[Project]:
            previous = project.members.get(member)
            if previous == role:
                return _Outcome(project)
            if previous is None and role is None:
                raise ValidationFailed(f"{member} is not a member of project {name}", field="principal")
            members = dict(project.members)
            if role is None:
                members.pop(member)
            else:
                members[member] = role
            if not any(r is Role.ADMIN for r in members.values()):
                raise LastAdmin(f"project {name} must keep at least one admin", project=name)
            draft = self._draft(project, actor)
            change = Change(project=Update(project, project), audit=None)
            if role is None:
                gone = Membership(principal=member, project=name, role=previous or Role.VIEWER)
                change.membership_deletes.append(gone)
            else:
                change.membership_puts.append(Membership(principal=member, project=name, role=role))
            change, entry = self._finish(
                draft,
                action="member.removed" if role is None else "member.set",
                target=f"member/{member}",
                before={"role": previous.value if previous else None},
                after={"role": role.value if role else None},
                project_changes={"members": members},
                change=change,
            )
            event = ProjectMemberChanged(
                **self._ev(entry),
                principal=member,
                role=role.value if role else None,
                previous_role=previous.value if previous else None,
            )
            return _Outcome(change.project.after, change, [event])

        return self._mutate(name, actor, Role.ADMIN, build)

    # -------------------------------------------------------------------------------- versions

    def _version(self, project: str, number: int) -> ModelVersion:
        return self._checked(project, number, self.repo.get_version(project, number))

    @staticmethod
    def _checked(project: str, number: int, version: ModelVersion | None) -> ModelVersion:
        if version is None:
            raise VersionNotFound(f"project {project} has no version {number}", project=project, version=number)
        if version.core.digest() != version.core_digest:
            raise IntegrityError(
                f"version {number} of project {project} does not match the core recorded at registration",
                project=project,
                version=number,
            )
        return version

    def register_version(
        self, actor: Actor, name: str, command: RegisterVersion, *, artifact_checked: bool = False
    ) -> tuple[ModelVersion, bool]:
        """Register a model version; returns (version, created). Registering the same training job
        again returns the stored version (created False) when its core is the same, else 409.
        The artifact's sha256 is checked against the store unless `artifact_checked`."""
        snapshot = self._snapshot(
            name,
            actor,
            Role.TRAINER,
            datasets=[command.dataset_id],
            versions=[command.parent_version] if command.parent_version is not None else [],
            runs=[command.run_id] if command.run_id is not None else [],
        )
        project = snapshot.project
        parent = None
        if command.parent_version is not None:
            parent = snapshot.versions.get(command.parent_version)
            if parent is None:
                raise ValidationFailed(
                    f"parent_version {command.parent_version} does not exist in project {name}", field="parent_version"
                )
        if command.dataset_id not in snapshot.datasets:
            raise ValidationFailed(
                f"dataset_id {command.dataset_id} is not a dataset of project {name}", field="dataset_id"
            )
        run = None
        if command.run_id is not None:
            run = snapshot.runs.get(command.run_id)
            if run is None:
                raise ValidationFailed(f"run_id {command.run_id} is not a run of project {name}", field="run_id")
            if command.parent_version is not None and command.parent_version != run.base_version:
                raise ValidationFailed(
                    f"run {run.run_id} branches from version {run.base_version}, not {command.parent_version}",
                    field="parent_version",
                )
            if run.base_version is not None and parent is None:
                parent = self.repo.get_version(name, run.base_version)
        branch = command.branch or (run.branch if run else None) or (parent.branch if parent else "main")
        if run is not None and branch != run.branch:
            raise ValidationFailed(f"run {run.run_id} is on branch {run.branch}, not {branch}", field="branch")
        core = ModelVersionCore(
            artifact_uri=command.artifact_uri,
            artifact_sha256=command.artifact_sha256,
            dataset_id=command.dataset_id,
            training_job=command.training_job,
            code_version=command.code_version,
            hyperparameters=command.hyperparameters,
            metrics=command.metrics,
            parent_version=parent.number if parent else None,
            branch=branch,
        )
        if not artifact_checked:
            self._check_artifact(core)

        def build(project: Project, conflict: CommitConflict | None) -> _Outcome[tuple[ModelVersion, bool]]:
            if conflict is not None and f"claim:{core.training_job}" in conflict.failed:
                return _Outcome(self._existing_registration(name, core))
            current_run = None
            if run is not None:
                current_run = run if conflict is None else self.repo.get_run(name, run.run_id)
                if current_run is not None and current_run.status is RunStatus.SUCCEEDED:
                    # the state machine retried Register: this run's job is registered already
                    claim = self.repo.get_claim(name, core.training_job)
                    if claim is not None and claim.version == current_run.version:
                        return _Outcome(self._existing_registration(name, core))
                if current_run is None or current_run.status not in (RunStatus.PENDING, RunStatus.RUNNING):
                    status = current_run.status.value if current_run else "missing"
                    raise Conflict(f"run {run.run_id} is {status}; it cannot register a version", status=status)
            draft = self._draft(project, actor)
            number = project.version_count + 1
            version = ModelVersion(
                **core.model_dump(),
                project=name,
                number=number,
                tags=command.tags,
                description=command.description,
                ancestry=[parent.number, *parent.ancestry] if parent else [],
                run_id=command.run_id,
                created_at=draft.at,
                created_by=actor.principal,
                registered_by=actor.principal,
                status_changed_at=draft.at,
                core_digest=core.digest(),
            )
            change = Change(
                project=Update(project, project),
                audit=None,
                version_puts=[version],
                claims=[JobClaim(project=name, training_job=core.training_job, version=number)],
            )
            if current_run is not None:
                change.run_puts.append(
                    Update(
                        current_run,
                        current_run.model_copy(
                            update={"status": RunStatus.SUCCEEDED, "version": number, "updated_at": draft.at}
                        ),
                    )
                )
            change, entry = self._finish(
                draft,
                action="version.registered",
                target=f"version/{number}",
                after={"core_digest": version.core_digest, **version.model_dump(mode="json", include=_REGISTER_AUDIT)},
                project_changes={"version_count": number},
                change=change,
            )
            event = ModelVersionRegistered(
                **self._ev(entry),
                version=number,
                branch=version.branch,
                parent_version=version.parent_version,
                dataset_id=version.dataset_id,
                training_job=version.training_job,
                code_version=version.code_version,
                artifact_uri=version.artifact_uri,
                artifact_sha256=version.artifact_sha256,
                metrics=version.metrics,
                run_id=version.run_id,
            )
            return _Outcome((version, True), change, [event])

        return self._mutate(name, actor, Role.TRAINER, build, project=project)

    def _existing_registration(self, name: str, core: ModelVersionCore) -> tuple[ModelVersion, bool]:
        claim = self.repo.get_claim(name, core.training_job)
        existing = self.repo.get_version(name, claim.version) if claim else None
        if existing is None:  # the claim is written with its version: this is a torn store
            raise ConcurrentModification(f"training job {core.training_job} is being registered", project=name)
        if existing.core.digest() != core.digest():
            raise AlreadyExists(
                f"training job {core.training_job} is already registered as version {existing.number} "
                "with a different artifact, data, code, hyperparameters or metrics",
                field="training_job",
                version=existing.number,
            )
        return existing, False

    def evaluation_metrics(self, uri: str) -> dict[str, float]:
        """The flat metrics of the evaluation report at `uri`, named `test:<metric>`."""
        if self._artifacts is None:
            raise ValidationFailed("evaluation reports are not read here", field="evaluation_uri")
        report = self._artifacts.read_json(uri)
        if not isinstance(report, dict) or not isinstance(report.get("metrics"), dict):
            raise ValidationFailed(f"no evaluation report with metrics at {uri}", field="evaluation_uri")
        return {
            f"test:{name}": float(value)
            for name, value in report["metrics"].items()
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        }

    def artifact_sha256(self, uri: str) -> str:
        """The sha256 of the artifact at `uri` (the lifecycle registers what training produced)."""
        if self._artifacts is None:
            raise ValidationFailed("artifact_sha256 is required: artifacts are not read here", field="artifact_sha256")
        actual = self._artifacts.sha256(uri)
        if actual is None:
            raise ValidationFailed(f"no readable object at {uri}", field="artifact_uri")
        return actual

    def _check_artifact(self, core: ModelVersionCore) -> None:
        if self._artifacts is None:
            return
        actual = self._artifacts.sha256(core.artifact_uri)
        if actual is None:
            raise ValidationFailed(f"no readable object at {core.artifact_uri}", field="artifact_uri")
        if actual != core.artifact_sha256:
            raise IntegrityError(
                f"the artifact's sha256 is {actual}, not {core.artifact_sha256}",
                field="artifact_sha256",
                actual=actual,
            )

    def get_version(self, actor: Actor, name: str, number: int) -> ModelVersion:
        snapshot = self._snapshot(name, actor, Role.VIEWER, versions=[number])
        return self._checked(name, number, snapshot.versions.get(number))

    def list_versions(
        self, actor: Actor, name: str, query: VersionQuery, limit: int, cursor: str | None
    ) -> Page[ModelVersion]:
        self._load(name, actor, Role.VIEWER)
        return self.repo.query_versions(name, query, limit, cursor)

    def update_version(self, actor: Actor, name: str, number: int, patch: VersionPatch) -> ModelVersion:
        """Change a version's description and/or tags (its core never changes)."""

        def build(project: Project, _: CommitConflict | None) -> _Outcome[ModelVersion]:
            version = self._version(name, number)
            tags = {k: v for k, v in version.tags.items() if k not in patch.remove_tags}
            tags.update(patch.set_tags)
            if len(tags) > 50:
                raise ValidationFailed("a version has at most 50 tags", field="set_tags")
            description = version.description if patch.description is None else patch.description
            before: dict[str, Any] = {}
            after: dict[str, Any] = {}
            if tags != version.tags:
                before["tags"], after["tags"] = version.tags, tags
            if description != version.description:
                before["description"], after["description"] = version.description, description
            if not after:
                return _Outcome(version)
            draft = self._draft(project, actor)
            updated = draft.update_version(version, tags=tags, description=description)
            change, entry = self._finish(
                draft, action="version.updated", target=f"version/{number}", before=before, after=after
            )
            event = ModelVersionUpdated(**self._ev(entry), version=number, fields=sorted(after))
            return _Outcome(updated, change, [event])

        return self._mutate(name, actor, Role.TRAINER, build)

    def transition(
        self,
        actor: Actor,
        name: str,
        number: int,
        to: VersionStatus,
        reason: str,
        *,
        failure: FailureCause | None = None,
    ) -> ModelVersion:
        """Move a version along an allowed edge. PRODUCTION, SUPERSEDED and ROLLED_BACK move only
        with the production alias (promote, revert, rollback)."""
        to = VersionStatus(to)
        required = TRANSITION_ROLES.get(to)
        if required is None:
            raise IllegalTransition(
                f"a version becomes {to.value} only through promote, revert or rollback", to_status=to.value
            )

        def build(project: Project, _: CommitConflict | None) -> _Outcome[ModelVersion]:
            version = self._version(name, number)
            if version.status is to and to is not VersionStatus.FAILED:
                return _Outcome(version)
            if version.status is VersionStatus.FAILED and to is VersionStatus.FAILED:
                return _Outcome(version)
            self._check_edge(version, to)
            if (
                to is VersionStatus.APPROVED
                and project.policy.separate_approver
                and not actor.system
                and normalise_principal(actor.principal) == normalise_principal(version.registered_by)
            ):
                raise Forbidden(
                    f"project {name} requires a different person to approve than the one who registered version "
                    f"{number}",
                    project=name,
                )
            draft = self._draft(project, actor)
            pointing = [a.name for a in self._aliases_of(draft, number)]
            if to is VersionStatus.ARCHIVED and pointing:
                raise Conflict(
                    f"version {number} is the target of aliases {pointing}; move them first",
                    aliases=pointing,
                    status=version.status.value,
                )
            change = Change(project=Update(project, project), audit=None)
            updated = self._set_status(draft, change, version, to, reason, failure=failure)
            change, entry = self._finish(
                draft,
                action=f"version.{to.value.lower()}",
                target=f"version/{number}",
                before={"status": version.status.value},
                after={"status": to.value, **({"failure": failure.model_dump()} if failure else {})},
                reason=reason,
                change=change,
            )
            event = ModelVersionStatusChanged(
                **self._ev(entry),
                version=number,
                from_status=version.status.value,
                to_status=to.value,
                reason=reason,
                error=failure.error if failure else None,
            )
            return _Outcome(updated, change, [event])

        return self._mutate(name, actor, required, build)

    @staticmethod
    def _check_edge(version: ModelVersion, to: VersionStatus) -> None:
        if not can_transition(version.status, to):
            raise IllegalTransition(
                f"version {version.number} is {version.status.value}; it cannot become {to.value}",
                current_status=version.status.value,
                requested_status=to.value,
                version=version.number,
            )

    def _set_status(
        self,
        draft: _Draft,
        change: Change,
        version: ModelVersion,
        to: VersionStatus,
        reason: str,
        *,
        failure: FailureCause | None = None,
        skip: frozenset[str] = frozenset(),
    ) -> ModelVersion:
        """Record a status change, keeping the alias items that point at the version in step
        (their denormalised target carries the status). Aliases in `skip`, or already written by
        `change`, are the caller's to write (one transaction may touch an item only once)."""
        updates: dict[str, Any] = {"status": to, "status_changed_at": draft.at, "status_reason": reason}
        if failure is not None:
            updates["failure"] = failure
        updated = draft.update_version(version, **updates)
        written = {u.after.name for u in change.alias_puts} | {a.name for a in change.alias_deletes} | set(skip)
        for alias in self._aliases_of(draft, version.number):
            if alias.name not in written:
                change.alias_puts.append(Update(alias, alias.model_copy(update={"target": updated.summary()})))
        return updated

    def _aliases_of(self, draft: _Draft, number: int) -> list[Alias]:
        """The aliases pointing at version `number` (one Query of the project's aliases per draft)."""
        if draft.aliases is None:
            draft.aliases = self.repo.list_aliases(draft.project.name)
        return [a for a in draft.aliases if a.version == number]

    def approve(self, actor: Actor, name: str, number: int, reason: str) -> ModelVersion:
        return self.transition(actor, name, number, VersionStatus.APPROVED, reason)

    def reject(self, actor: Actor, name: str, number: int, reason: str) -> ModelVersion:
        return self.transition(actor, name, number, VersionStatus.REJECTED, reason)

    def retire(self, actor: Actor, name: str, number: int, reason: str) -> ModelVersion:
        return self.transition(actor, name, number, VersionStatus.ARCHIVED, reason)

    def log(self, actor: Actor, name: str, number: int, limit: int = 100) -> list[ModelVersion]:
        """The version and its ancestors (parent, grandparent, ...), nearest first."""
        snapshot = self._snapshot(name, actor, Role.VIEWER, versions=[number])
        version = self._checked(name, number, snapshot.versions.get(number))
        wanted = version.ancestry[: max(limit - 1, 0)]
        found = self.repo.get_versions(name, wanted)
        return [version, *(found[n] for n in wanted if n in found)]

    def diff(self, actor: Actor, name: str, a: int, b: int) -> VersionDiff:
        found = self._snapshot(name, actor, Role.VIEWER, versions=[a, b]).versions
        for n in (a, b):
            if n not in found:
                raise VersionNotFound(f"project {name} has no version {n}", project=name, version=n)
        return diff_versions(found[a], found[b])

    # --------------------------------------------------------------------------------- aliases

    def get_alias(self, actor: Actor, name: str, alias: str) -> Alias:
        """An alias for a caller: its role and the alias are read in one round trip."""
        found = self._snapshot(name, actor, Role.VIEWER, aliases=[alias]).aliases.get(alias)
        if found is None:
            raise AliasNotFound(f"project {name} has no alias {alias}", project=name, alias=alias)
        return found

    def resolve_alias(self, project: str, alias: str) -> Alias | None:
        """For platform components (serving, rollback): one GetItem, no membership check."""
        return self.repo.get_alias(project, alias)

    def list_aliases(self, actor: Actor, name: str) -> list[Alias]:
        self._load(name, actor, Role.VIEWER)
        return self.repo.list_aliases(name)

    def alias_history(
        self, actor: Actor, name: str, alias: str, *, at: datetime | None, limit: int, cursor: str | None
    ) -> Page[AliasHistoryEntry]:
        self._load(name, actor, Role.VIEWER)
        return self.repo.alias_history(name, alias, at=at, limit=limit, cursor=cursor)

    def promote(
        self, actor: Actor, name: str, number: int, reason: str, *, expected_current: int | None = UNSET
    ) -> Alias:
        """Point `production` at a DEPLOYING version (or re-promote a SUPERSEDED one): the old
        production version becomes SUPERSEDED and `previous`. With `expected_current` (a version
        number, or None for "no production yet") the move only happens if production is still
        there; without it, production must not move between this request's first read and its
        commit. Either way concurrent promotions have exactly one winner; the others get 409."""
        return self._move_production(actor, name, number, reason, expected_current, action="promote")

    def revert(
        self, actor: Actor, name: str, number: int, reason: str, *, expected_current: int | None = UNSET
    ) -> Alias:
        """Re-promote an earlier version that served before (SUPERSEDED). History is appended to,
        never rewritten."""
        return self._move_production(actor, name, number, reason, expected_current, action="revert")

    def rollback(self, actor: Actor, name: str, reason: str, *, expected_current: int | None = UNSET) -> Alias:
        """Production goes back to the `previous` version; the current one becomes ROLLED_BACK.
        Afterwards `previous` is empty until the next promotion."""
        project = self._load(name, actor, Role.APPROVER)
        del project
        previous = self.repo.get_alias(name, PREVIOUS)
        if previous is None:
            raise Conflict(f"project {name} has no previous version to roll back to", project=name)
        return self._move_production(actor, name, previous.version, reason, expected_current, action="rollback")

    def _move_production(
        self, actor: Actor, name: str, number: int, reason: str, expected: int | None, *, action: str
    ) -> Alias:
        state: dict[str, Any] = {"expected": expected}

        def build(project: Project, _: CommitConflict | None) -> _Outcome[Alias]:
            aliases = self.repo.list_aliases(name)
            by_name = {a.name: a for a in aliases}
            current = by_name.get(PRODUCTION)
            current_version = current.version if current else None
            if state["expected"] is UNSET:
                state["expected"] = current_version
            if current_version != state["expected"]:
                raise ConcurrentModification(
                    f"production of project {name} is version {current_version}, not {state['expected']}",
                    current_production=current_version,
                    expected=state["expected"],
                )
            target = self._version(name, number)
            if current is not None and current_version == number:
                return _Outcome(current)
            allowed = {
                "promote": {VersionStatus.DEPLOYING, VersionStatus.SUPERSEDED},
                "revert": {VersionStatus.SUPERSEDED},
                "rollback": {VersionStatus.SUPERSEDED},
            }[action]
            if target.status not in allowed:
                raise IllegalTransition(
                    f"version {number} is {target.status.value}; {action} needs "
                    f"{' or '.join(sorted(s.value for s in allowed))}",
                    current_status=target.status.value,
                    version=number,
                )
            previous = by_name.get(PREVIOUS)
            old = self._version(name, current_version) if current_version is not None else None
            draft = self._draft(project, actor)
            draft.aliases = aliases
            change = Change(project=Update(project, project), audit=None)
            seq = project.audit_seq + 1
            events: list[dict[str, Any]] = []

            # the new production version
            new_target = self._set_status(draft, change, target, VersionStatus.PRODUCTION, reason, skip=MANAGED)
            production = Alias(
                project=name,
                name=PRODUCTION,
                version=number,
                target=new_target.summary(),
                updated_at=draft.at,
                updated_by=actor.principal,
                reason=reason,
                audit_seq=seq,
            )
            change.alias_puts.insert(0, Update(current, production))
            change.history.append(
                AliasHistoryEntry(
                    project=name,
                    alias=PRODUCTION,
                    version=number,
                    previous_version=current_version,
                    at=draft.at,
                    actor=actor.principal,
                    reason=reason,
                    action=action,
                    audit_seq=seq,
                )
            )
            events.append({"alias": PRODUCTION, "version": number, "previous_version": current_version})

            # the old production version: SUPERSEDED and `previous`, or ROLLED_BACK and no `previous`
            if old is not None:
                if action == "rollback":
                    self._set_status(
                        draft,
                        change,
                        old,
                        VersionStatus.ROLLED_BACK,
                        reason,
                        skip=MANAGED,
                    )
                else:
                    old_updated = self._set_status(draft, change, old, VersionStatus.SUPERSEDED, reason, skip=MANAGED)
                    change.alias_puts.append(
                        Update(
                            previous,
                            Alias(
                                project=name,
                                name=PREVIOUS,
                                version=old.number,
                                target=old_updated.summary(),
                                updated_at=draft.at,
                                updated_by=actor.principal,
                                reason=reason,
                                audit_seq=seq,
                            ),
                        )
                    )
                    change.history.append(
                        AliasHistoryEntry(
                            project=name,
                            alias=PREVIOUS,
                            version=old.number,
                            previous_version=previous.version if previous else None,
                            at=draft.at,
                            actor=actor.principal,
                            reason=reason,
                            action=action,
                            audit_seq=seq,
                        )
                    )
                    was = previous.version if previous else None
                    events.append({"alias": PREVIOUS, "version": old.number, "previous_version": was})
            if previous is not None and (action == "rollback" or old is None):
                # `previous` is emptied: it pointed at the version now in production
                change.alias_deletes.append(previous)
                change.history.append(
                    AliasHistoryEntry(
                        project=name,
                        alias=PREVIOUS,
                        version=None,
                        previous_version=previous.version,
                        at=draft.at,
                        actor=actor.principal,
                        reason=reason,
                        action=action,
                        audit_seq=seq,
                    )
                )
                events.append({"alias": PREVIOUS, "version": None, "previous_version": previous.version})
            status_events = [
                (u.before.number if u.before else u.after.number, u.before.status if u.before else None, u.after.status)
                for u in draft.versions.values()
            ]
            change, entry = self._finish(
                draft,
                action=f"alias.{action}",
                target=f"alias/{PRODUCTION}",
                before={"production": current_version, "previous": previous.version if previous else None},
                after={
                    "production": number,
                    "previous": None if action == "rollback" or old is None else old.number,
                },
                reason=reason,
                change=change,
            )
            published: list[LeptonEvent] = [
                AliasMoved(**self._ev(entry), action=action, reason=reason, **e) for e in events
            ]
            published += [
                ModelVersionStatusChanged(
                    **self._ev(entry),
                    version=n,
                    from_status=str(before),
                    to_status=after.value,
                    reason=reason,
                )
                for n, before, after in status_events
                if before is not None and before is not after
            ]
            return _Outcome(production, change, published)

        return self._mutate(name, actor, Role.APPROVER, build)

    def set_alias(
        self,
        actor: Actor,
        name: str,
        alias: str,
        number: int,
        reason: str = "",
        *,
        expected_version: int | None = UNSET,
    ) -> Alias:
        """Point a user-defined alias (staging, champion, ...) at a version. `production` is
        promote; `previous` is managed by promote/revert/rollback."""
        if alias == PRODUCTION:
            return self.promote(actor, name, number, reason, expected_current=expected_version)
        if alias in RESERVED_ALIASES:
            raise AliasReserved(f"alias {alias} is moved only by promote, revert and rollback", alias=alias)
        state: dict[str, Any] = {"expected": expected_version}
        first = self._snapshot(name, actor, Role.TRAINER, aliases=[alias], versions=[number])

        def build(project: Project, conflict: CommitConflict | None) -> _Outcome[Alias]:
            snapshot = first if conflict is None else self.repo.read(name, aliases=[alias], versions=[number])
            current = snapshot.aliases.get(alias)
            current_version = current.version if current else None
            if state["expected"] is UNSET:
                state["expected"] = current_version
            if current_version != state["expected"]:
                raise ConcurrentModification(
                    f"alias {alias} points at version {current_version}, not {state['expected']}",
                    current_version=current_version,
                    expected=state["expected"],
                )
            target = self._checked(name, number, snapshot.versions.get(number))
            if current_version == number:
                assert current is not None
                return _Outcome(current)
            if target.status is VersionStatus.ARCHIVED:
                raise IllegalTransition(
                    f"version {number} is ARCHIVED; aliases cannot point at it", current_status=target.status.value
                )
            draft = self._draft(project, actor)
            seq = project.audit_seq + 1
            new_alias = Alias(
                project=name,
                name=alias,
                version=number,
                target=target.summary(),
                updated_at=draft.at,
                updated_by=actor.principal,
                reason=reason,
                audit_seq=seq,
            )
            change = Change(
                project=Update(project, project),
                audit=None,
                alias_puts=[Update(current, new_alias)],
                history=[
                    AliasHistoryEntry(
                        project=name,
                        alias=alias,
                        version=number,
                        previous_version=current_version,
                        at=draft.at,
                        actor=actor.principal,
                        reason=reason,
                        action="set",
                        audit_seq=seq,
                    )
                ],
            )
            change, entry = self._finish(
                draft,
                action="alias.set",
                target=f"alias/{alias}",
                before={"version": current_version},
                after={"version": number},
                reason=reason,
                change=change,
            )
            event = AliasMoved(
                **self._ev(entry),
                alias=alias,
                version=number,
                previous_version=current_version,
                action="set",
                reason=reason,
            )
            return _Outcome(new_alias, change, [event])

        return self._mutate(name, actor, Role.TRAINER, build, project=first.project)

    def delete_alias(self, actor: Actor, name: str, alias: str, reason: str = "") -> None:
        if alias in RESERVED_ALIASES:
            raise AliasReserved(f"alias {alias} is moved only by promote, revert and rollback", alias=alias)

        def build(project: Project, _: CommitConflict | None) -> _Outcome[None]:
            current = self.repo.get_alias(name, alias)
            if current is None:
                raise AliasNotFound(f"project {name} has no alias {alias}", project=name, alias=alias)
            draft = self._draft(project, actor)
            change = Change(
                project=Update(project, project),
                audit=None,
                alias_deletes=[current],
                history=[
                    AliasHistoryEntry(
                        project=name,
                        alias=alias,
                        version=None,
                        previous_version=current.version,
                        at=draft.at,
                        actor=actor.principal,
                        reason=reason,
                        action="delete",
                        audit_seq=project.audit_seq + 1,
                    )
                ],
            )
            change, entry = self._finish(
                draft,
                action="alias.deleted",
                target=f"alias/{alias}",
                before={"version": current.version},
                after=None,
                reason=reason,
                change=change,
            )
            event = AliasMoved(
                **self._ev(entry),
                alias=alias,
                version=None,
                previous_version=current.version,
                action="delete",
                reason=reason,
            )
            return _Outcome(None, change, [event])

        self._mutate(name, actor, Role.TRAINER, build)

    # ------------------------------------------------------------------------------------ runs

    def create_run(
        self, actor: Actor, name: str, command: NewRun, *, run_id: str | None = None, execution_arn: str | None = None
    ) -> Run:
        """A branch record: a run from `base_version` (or from scratch) with overrides. The
        lifecycle state machine executes it and registers its version with `run_id`.

        `run_id` (the lifecycle passes one derived from its execution) makes the call idempotent: a
        retry returns the run the first call recorded, and records and publishes nothing; a run of
        that id recorded from another command is a conflict (409). `execution_arn`: the execution
        recording the run runs it, so it is recorded RUNNING in it (one write: no PENDING run is
        left behind if that execution fails before it could mark the run), with RunStarted too."""
        project = self._load(name, actor, Role.TRAINER)
        base = None
        if command.base_version is not None:
            base = self.repo.get_version(name, command.base_version)
            if base is None:
                raise ValidationFailed(
                    f"base_version {command.base_version} does not exist in project {name}", field="base_version"
                )
        overrides = command.overrides
        dataset_id = overrides.dataset_id or (base.dataset_id if base else None) or project.latest_dataset_id
        if overrides.dataset_id is not None and self.repo.get_dataset(name, overrides.dataset_id) is None:
            raise ValidationFailed(
                f"dataset_id {overrides.dataset_id} is not a dataset of project {name}", field="overrides.dataset_id"
            )
        del project
        idempotent = run_id is not None
        run_id = run_id or f"run-{int(time.time() * 1000):x}{secrets.token_hex(5)}"

        def build(project: Project, _: CommitConflict | None) -> _Outcome[Run]:
            if idempotent and (recorded := self.repo.get_run(name, run_id)) is not None:
                same_branch = command.branch is None or recorded.branch == command.branch
                if recorded.overrides != overrides or recorded.base_version != command.base_version or not same_branch:
                    raise AlreadyExists(
                        f"project {name} already has a run {run_id}, recorded with other settings",
                        project=name,
                        run_id=run_id,
                    )
                return _Outcome(recorded)
            draft = self._draft(project, actor)
            hyper = {
                **project.training.hyperparameters,
                **(base.hyperparameters if base else {}),
                **overrides.hyperparameters,
            }
            run = Run(
                project=name,
                run_id=run_id,
                branch=command.branch or (base.branch if base else "main"),
                base_version=base.number if base else None,
                overrides=overrides,
                hyperparameters=hyper,
                dataset_id=dataset_id,
                code_version=overrides.code_version or (base.code_version if base else None),
                created_at=draft.at,
                created_by=actor.principal,
                updated_at=draft.at,
            )
            if execution_arn is not None:
                run = run.model_copy(
                    update={"status": RunStatus.RUNNING, "execution_arn": execution_arn, "started_at": draft.at}
                )
            change = Change(project=Update(project, project), audit=None, run_puts=[Update(None, run)])
            change, entry = self._finish(
                draft,
                action="run.created",
                target=f"run/{run_id}",
                after=run.model_dump(
                    mode="json",
                    include={"branch", "base_version", "overrides", "dataset_id"}
                    | ({"status", "execution_arn"} if execution_arn is not None else set()),
                ),
                change=change,
            )
            event = RunCreated(
                **self._ev(entry),
                run_id=run_id,
                branch=run.branch,
                base_version=run.base_version,
                hyperparameters=hyper,
                dataset_id=dataset_id,
            )
            events: list[LeptonEvent] = [event]
            if execution_arn is not None:
                events.append(RunStarted(**self._ev(entry), run_id=run_id, execution_arn=execution_arn))
            return _Outcome(run, change, events)

        return self._mutate(name, actor, Role.TRAINER, build)

    def get_run(self, actor: Actor, name: str, run_id: str) -> Run:
        self._load(name, actor, Role.VIEWER)
        return self._require_run(name, run_id)

    def _require_run(self, name: str, run_id: str) -> Run:
        run = self.repo.get_run(name, run_id)
        if run is None:
            raise RunNotFound(f"project {name} has no run {run_id}", project=name, run_id=run_id)
        return run

    def run_to_start(self, actor: Actor, name: str, run_id: str) -> Run:
        """A recorded run a trainer may start the lifecycle for: it must still be PENDING."""
        return self._run_for(actor, name, run_id, (RunStatus.PENDING,), "started")

    def _run_for(self, actor: Actor, name: str, run_id: str, statuses: tuple[RunStatus, ...], verb: str) -> Run:
        """The run, for a trainer to act on if it is in one of `statuses` (else 409 naming its status)."""
        self._load(name, actor, Role.TRAINER)
        run = self._require_run(name, run_id)
        if run.status not in statuses:
            allowed = " or ".join(s.value for s in statuses)
            raise IllegalTransition(
                f"run {run_id} is {run.status.value}: only a {allowed} run is {verb}",
                run_id=run_id,
                current_status=run.status.value,
            )
        return run

    def begin_run(self, actor: Actor, name: str, run_id: str, execution_arn: str) -> Run:
        """The lifecycle execution `execution_arn` begins to run a PENDING run: it becomes RUNNING and
        records its execution. Idempotent for that execution (a retried PrepareTraining gets the run
        and records nothing); a run that another execution runs, or that has ended, is a 409 naming
        its status and execution."""

        def build(project: Project, _: CommitConflict | None) -> _Outcome[Run]:
            run = self._require_run(name, run_id)
            if run.status is RunStatus.RUNNING and run.execution_arn == execution_arn:
                return _Outcome(run)
            if run.status is not RunStatus.PENDING:
                by = f" (execution {run.execution_arn})" if run.execution_arn else ""
                raise IllegalTransition(
                    f"run {run_id} is {run.status.value}{by}: only a PENDING run begins to run",
                    run_id=run_id,
                    current_status=run.status.value,
                    execution_arn=run.execution_arn,
                )
            draft = self._draft(project, actor)
            running, change, entry = self._run_change(
                draft,
                run,
                {"status": RunStatus.RUNNING, "execution_arn": execution_arn, "started_at": draft.at},
                action="run.started",
                before={"status": run.status.value},
                after={"status": RunStatus.RUNNING.value, "execution_arn": execution_arn},
            )
            event = RunStarted(**self._ev(entry), run_id=run_id, execution_arn=execution_arn)
            return _Outcome(running, change, [event])

        return self._mutate(name, actor, Role.TRAINER, build)

    def _run_change(
        self,
        draft: _Draft,
        run: Run,
        updates: dict[str, Any],
        *,
        action: str,
        before: dict[str, Any],
        after: dict[str, Any],
        reason: str = "",
    ) -> tuple[Run, Change, AuditEntry]:
        """The run with `updates` (and updated_at), in a Change that writes it with its audit entry."""
        new_run = run.model_copy(update={**updates, "updated_at": draft.at})
        change, entry = self._finish(
            draft,
            action=action,
            target=f"run/{run.run_id}",
            before=before,
            after=after,
            reason=reason,
            change=Change(project=Update(draft.project, draft.project), audit=None, run_puts=[Update(run, new_run)]),
        )
        return new_run, change, entry

    def close_run(
        self,
        actor: Actor,
        name: str,
        run_id: str,
        execution_arn: str,
        failure: FailureCause,
        *,
        started_for: bool,
        status: RunStatus = RunStatus.FAILED,
    ) -> tuple[Run, bool]:
        """The lifecycle execution `execution_arn` ended, or is being stopped, without ending its
        run: stopped (`status` STOPPED), timed out or failed where MarkFailed could not record it
        (FAILED). The run takes `status` with `failure` (why) and the execution, if it is the
        execution's to close: RUNNING in that execution, or PENDING and `started_for` (the execution
        was started for this run and ended before it began it; its name cannot be started again).
        Any other run is returned as it is: one that has ended (MarkFailed, Register or a stop
        recorded it), or one another execution runs. The version a run registered is left as it is.
        Idempotent. Returns the run and whether this call closed it."""
        if status not in (RunStatus.FAILED, RunStatus.STOPPED):
            raise ValueError(f"a run is closed FAILED or STOPPED, not {status.value}")

        def build(project: Project, _: CommitConflict | None) -> _Outcome[tuple[Run, bool]]:
            run = self._require_run(name, run_id)
            running_here = run.status is RunStatus.RUNNING and run.execution_arn == execution_arn
            pending_here = run.status is RunStatus.PENDING and run.execution_arn is None and started_for
            if not (running_here or pending_here):
                return _Outcome((run, False))
            closed, change, entry = self._run_change(
                self._draft(project, actor),
                run,
                {"status": status, "failure": failure, "execution_arn": execution_arn},
                action="run.stopped" if status is RunStatus.STOPPED else "run.failed",
                before={"run_status": run.status.value},
                after={"run_status": status.value, "failure": failure.model_dump(), "execution_arn": execution_arn},
                reason=failure.cause if status is RunStatus.STOPPED else failure.error,
            )
            event: LeptonEvent
            if status is RunStatus.STOPPED:
                event = RunStopped(
                    **self._ev(entry),
                    run_id=run_id,
                    execution_arn=execution_arn,
                    error=failure.error,
                    cause=failure.cause,
                )
            else:
                event = RunFailed(
                    **self._ev(entry), run_id=run_id, error=failure.error, cause=failure.cause, version=run.version
                )
            return _Outcome((closed, True), change, [event])

        return self._mutate(name, actor, Role.TRAINER, build)

    def run_to_stop(self, actor: Actor, name: str, run_id: str) -> Run:
        """A run a trainer may stop: PENDING (its execution may not have begun it), RUNNING, or
        STOPPED already (a repeated stop)."""
        statuses = (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.STOPPED)
        return self._run_for(actor, name, run_id, statuses, "stopped")

    def list_runs(
        self, actor: Actor, name: str, limit: int, cursor: str | None, status: RunStatus | None = None
    ) -> Page[Run]:
        self._load(name, actor, Role.VIEWER)
        return self.repo.list_runs(name, limit, cursor, status)

    def mark_failed(
        self,
        actor: Actor,
        name: str,
        failure: FailureCause,
        *,
        run_id: str | None = None,
        version: int | None = None,
        execution_arn: str | None = None,
    ) -> tuple[Run | None, ModelVersion | None]:
        """A lifecycle step failed: the run (and the version it registered, if it is still in a
        running status) become FAILED with the cause. Production is never touched: a version in
        PRODUCTION is refused (409); that is a rollback. Idempotent.

        `execution_arn` is the execution that failed: a run another execution is running (one that
        failed to begin because the run was already running or ended) is not its to fail, and is
        returned as it is."""
        if run_id is None and version is None:
            raise ValidationFailed("give run_id or version", field="run_id")

        def build(project: Project, _: CommitConflict | None) -> _Outcome[tuple[Run | None, ModelVersion | None]]:
            run = None
            if run_id is not None:
                run = self._require_run(name, run_id)
            if run is not None and execution_arn is not None and run.execution_arn not in (None, execution_arn):
                return _Outcome((run, self._version(name, version) if version is not None else None))
            number = version if version is not None else (run.version if run else None)
            target = self._version(name, number) if number is not None else None
            # a STOPPED run stays so: its execution failing afterwards is the stop's consequence
            run_changes = run is not None and run.status not in (RunStatus.FAILED, RunStatus.STOPPED)
            version_changes = target is not None and target.status is not VersionStatus.FAILED
            if target is not None and version_changes:
                self._check_edge(target, VersionStatus.FAILED)
            if not run_changes and not version_changes:
                return _Outcome((run, target))
            draft = self._draft(project, actor)
            change = Change(project=Update(project, project), audit=None)
            new_run = run
            if run is not None and run_changes:
                new_run = run.model_copy(
                    update={"status": RunStatus.FAILED, "failure": failure, "updated_at": draft.at, "version": number}
                )
                change.run_puts.append(Update(run, new_run))
            new_target = target
            if target is not None and version_changes:
                new_target = self._set_status(
                    draft, change, target, VersionStatus.FAILED, failure.error, failure=failure
                )
            change, entry = self._finish(
                draft,
                action="run.failed" if run is not None else "version.failed",
                target=f"run/{run_id}" if run_id else f"version/{number}",
                before={
                    "run_status": run.status.value if run else None,
                    "version_status": target.status.value if target else None,
                },
                after={"failure": failure.model_dump(), "version": number},
                reason=failure.error,
                change=change,
            )
            events: list[LeptonEvent] = []
            if run is not None and run_changes:
                events.append(
                    RunFailed(
                        **self._ev(entry), run_id=run.run_id, error=failure.error, cause=failure.cause, version=number
                    )
                )
            if target is not None and version_changes:
                events.append(
                    ModelVersionStatusChanged(
                        **self._ev(entry),
                        version=target.number,
                        from_status=target.status.value,
                        to_status=VersionStatus.FAILED.value,
                        reason=failure.error,
                        error=failure.error,
                    )
                )
            return _Outcome((new_run, new_target), change, events)

        return self._mutate(name, actor, Role.TRAINER, build)

    # ------------------------------------------------------------------------------------ audit

    def audit_page(
        self, actor: Actor, name: str, limit: int, cursor: str | None, *, newest_first: bool = True
    ) -> Page[AuditEntry]:
        self._load(name, actor, Role.VIEWER)
        return self.repo.audit_page(name, limit, cursor, newest_first)

    def verify_audit(self, actor: Actor, name: str, page_size: int = 500) -> VerifyReport:
        project = self._load(name, actor, Role.VIEWER)

        def walk() -> Any:
            after = 0
            while True:
                batch = self.repo.audit_entries(name, after_seq=after, limit=page_size)
                yield from batch
                if len(batch) < page_size:
                    return
                after = batch[-1].seq

        return verify_chain(name, walk(), head_seq=project.audit_seq, head_hash=project.audit_head)

    # --------------------------------------------------------------------------------- datasets

    def get_contract(self, name: str) -> DataContract | None:
        project = self.repo.get_project(name)
        if project is None:
            raise ProjectNotFound(f"project {name} does not exist", project=name)
        return project.contract

    def adopt_contract(self, actor: Actor, name: str, contract: DataContract) -> DataContract:
        def build(project: Project, _: CommitConflict | None) -> _Outcome[DataContract]:
            if project.contract is not None:
                return _Outcome(project.contract)
            draft = self._draft(project, actor)
            change = Change(project=Update(project, project), audit=None, require_no_contract=True)
            change, entry = self._finish(
                draft,
                action="contract.adopted",
                target=f"project/{name}",
                after={"contract": contract.model_dump(mode="json")},
                project_changes={"contract": contract},
                change=change,
            )
            return _Outcome(contract, change, [ProjectUpdated(**self._ev(entry), fields=["contract"])])

        return self._mutate(name, actor, Role.ADMIN, build)

    def register_dataset(self, actor: Actor, dataset: DatasetVersion) -> DatasetVersion:
        name = dataset.project
        existing = self.repo.get_dataset(name, dataset.dataset_id)
        if existing is not None:
            return existing

        def build(project: Project, conflict: CommitConflict | None) -> _Outcome[DatasetVersion]:
            if conflict is not None and f"dataset:{dataset.dataset_id}" in conflict.failed:
                stored = self.repo.get_dataset(name, dataset.dataset_id)
                if stored is not None:
                    return _Outcome(stored)
            draft = self._draft(project, actor)
            number = project.dataset_count + 1
            record = dataset.model_copy(
                update={
                    "number": number,
                    "parent_dataset_id": dataset.parent_dataset_id or project.latest_dataset_id,
                }
            )
            change = Change(project=Update(project, project), audit=None, dataset_puts=[record])
            change, _ = self._finish(
                draft,
                action="dataset.accepted",
                target=f"dataset/{dataset.dataset_id}",
                after={
                    "number": number,
                    "content_sha256": record.content_sha256,
                    "rows": record.rows.model_dump(),
                    "source": record.source.model_dump(),
                },
                project_changes={"dataset_count": number, "latest_dataset_id": record.dataset_id},
                change=change,
            )
            return _Outcome(record, change)

        return self._mutate(name, actor, Role.TRAINER, build)

    def record_rejection(self, rejection: DatasetRejection) -> DatasetRejection:
        return self.repo.put_rejection(rejection)

    def latest_dataset(self, name: str) -> DatasetVersion | None:
        project = self.repo.get_project(name)
        if project is None:
            raise ProjectNotFound(f"project {name} does not exist", project=name)
        if project.latest_dataset_id is None:
            return None
        return self.repo.get_dataset(name, project.latest_dataset_id)

    def get_dataset(self, actor: Actor, name: str, dataset_id: str) -> DatasetVersion:
        self._load(name, actor, Role.VIEWER)
        found = self.repo.get_dataset(name, dataset_id)
        if found is None:
            raise DatasetNotFound(f"project {name} has no dataset {dataset_id}", project=name, dataset_id=dataset_id)
        return found

    def list_datasets(self, actor: Actor, name: str, limit: int, cursor: str | None) -> Page[DatasetVersion]:
        self._load(name, actor, Role.VIEWER)
        return self.repo.list_datasets(name, limit, cursor)

    def list_rejections(self, actor: Actor, name: str, limit: int, cursor: str | None) -> Page[DatasetRejection]:
        self._load(name, actor, Role.VIEWER)
        return self.repo.list_rejections(name, limit, cursor)


_REGISTER_AUDIT = {
    "artifact_uri",
    "artifact_sha256",
    "dataset_id",
    "training_job",
    "code_version",
    "parent_version",
    "branch",
    "run_id",
}


def _dump(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value
